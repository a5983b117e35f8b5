"""Shared fixtures: where the public development data lies, and small synthetic images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from breastseg.image import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$BREASTSEG_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("BREASTSEG_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"public development data not found at {path} (set BREASTSEG_DATA; see README 'Data')")
    return path


def oblique_direction() -> np.ndarray:
    """A right-handed rotation about an oblique axis (no axis-aligned shortcuts in geometry tests)."""
    axis = np.array([0.3, -0.5, 0.8])
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(23.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@pytest.fixture
def oblique_image() -> Image:
    rng = np.random.default_rng(7)
    arr = rng.normal(100.0, 30.0, size=(7, 11, 13)).astype(np.float32)
    return Image(
        arr,
        spacing=(2.5, 0.7, 0.9),
        origin=(-12.5, 40.25, 101.0),
        direction=oblique_direction(),
        modality="CT",
        units="HU",
    )
