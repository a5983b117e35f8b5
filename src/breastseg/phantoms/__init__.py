"""Synthetic phantoms with known truth, deterministic by seed, for every modality (demo, tests, docs)."""

from __future__ import annotations

from breastseg.phantoms.base import Phantom, write_phantom
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_lamellae, make_specimen_phantom

__all__ = ["Phantom", "SpecimenPhantomConfig", "make_lamellae", "make_specimen_phantom", "write_phantom"]
