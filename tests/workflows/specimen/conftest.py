"""Phantoms shared by the specimen workflow tests (generated once per session; deterministic)."""

from __future__ import annotations

import pytest

from breastseg.io.dicom_meta import PetInfo
from breastseg.phantoms.base import Phantom
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom
from breastseg.suv import pet_info_from_mapping

#: "clean" phantoms: the study's geometry at 0.2 mm, with little noise and heterogeneity
CLEAN = {
    "ct_spacing_mm": 0.2,
    "pet_spacing_mm": 0.4,
    "specimen_size_mm": (20.0, 24.0, 30.0),
    "tumour_diameter_mm": 8.0,
    "ct_noise_hu": 10.0,
    "pet_relative_noise": 0.1,
    "tumour_heterogeneity": 0.1,
    "fibroglandular_heterogeneity": 0.1,
    "uptake_boundary_mm": 0.0,
}


def clean_phantom(seed: int, margin_mm: float | None) -> Phantom:
    extra = {"specimen_size_mm": (26.0, 30.0, 36.0)} if (margin_mm or 0) > 3 else {}
    return make_specimen_phantom(SpecimenPhantomConfig(seed=seed, margin_mm=margin_mm, **{**CLEAN, **extra}))


def phantom_pet_info(ph: Phantom) -> PetInfo:
    return pet_info_from_mapping(ph.truth["pet"], "phantom")


@pytest.fixture(scope="session")
def negative_phantom() -> Phantom:
    return clean_phantom(11, 2.0)


@pytest.fixture(scope="session")
def positive_phantom() -> Phantom:
    return clean_phantom(12, None)
