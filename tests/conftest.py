"""Shared fixtures: where the public development data lies, and small synthetic images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from breastseg.image import Image

REPO_ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on a 2-core machine: one compute thread each (torch, ITK and the commands the
    # tests start), so that they share the cores instead of oversubscribing them
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ.setdefault(_var, "1")

#: ``breastseg phantom specimen`` options for a small, quick specimen (0.4 mm CT, 0.8 mm PET, 8 mm tumour)
SMALL_PHANTOM_ARGS = ["--ct-spacing-mm", "0.4", "--pet-spacing-mm", "0.8", "--tumour-diameter-mm", "8"]


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


@pytest.fixture(scope="session")
def phantom_lamellae(tmp_path_factory: pytest.TempPathFactory) -> list:
    """Preprocessed 2D lamellae of 6 small specimen phantoms (3 slices each), as LamellaSlice objects."""
    from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_lamellae, make_specimen_phantom, write_lamellae
    from breastseg.workflows.specimen.lamellae import read_lamellae

    root = tmp_path_factory.mktemp("lamellae")
    manifests = []
    for seed in range(6):
        cfg = SpecimenPhantomConfig(
            seed=500 + seed,
            ct_spacing_mm=0.3,
            pet_spacing_mm=0.6,
            specimen_size_mm=(20.0, 24.0, 30.0),
            tumour_diameter_mm=9.0,
            margin_mm=[None, 1.0, 2.0][seed % 3],
        )
        ph = make_specimen_phantom(cfg)
        manifests.append(write_lamellae(make_lamellae(ph, 3, thickness_mm=2.4), root / f"s{seed}", f"pt{seed}"))
    return read_lamellae(manifests)


@pytest.fixture(scope="session")
def tiny_bundle(phantom_lamellae: list):
    """A 3-member PET-CT ResU-Net bundle trained for a few epochs (seconds on a CPU)."""
    from breastseg.learn.patches import PatchConfig
    from breastseg.learn.trainer import TrainConfig
    from breastseg.nets.resunet import ResUNetConfig
    from breastseg.workflows.specimen.train import ResUNetTraining, train_bundle

    spec = ResUNetTraining(
        inputs="petct",
        net=ResUNetConfig(depth=3, first_channels=8),
        train=TrainConfig(epochs=12, early_stopping_patience=8, patch=PatchConfig(size=48, per_image=12)),
        folds=3,
    )
    return train_bundle(phantom_lamellae, spec, show_progress=False, description="test phantoms")
