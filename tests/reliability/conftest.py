"""Inputs for the reliability tests: one small specimen phantom, as NIfTI and as DICOM, written once."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from breastseg.cli.main import main
from tests.conftest import SMALL_PHANTOM_ARGS


def tree_digest(path: Path) -> dict[str, str]:
    """SHA-256 of every file under ``path`` (or of ``path`` itself), by relative name."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {
        str(f.relative_to(path) if path.is_dir() else f.name): hashlib.sha256(f.read_bytes()).hexdigest() for f in files
    }


def assess_argv(case: Path, out: Path, *extra: str) -> list[str]:
    """``specimen assess`` of a case folder's NIfTI inputs (ct, pet, truth.json as the PET info) into ``out``."""
    return [
        "specimen",
        "assess",
        "--ct",
        str(case / "ct.nii.gz"),
        "--pet",
        str(case / "pet.nii.gz"),
        "--pet-info",
        str(case / "truth.json"),
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="session")
def specimen_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``breastseg phantom specimen --dicom`` with the small test options (seed 0, 1.5 mm margin)."""
    root = tmp_path_factory.mktemp("reliability") / "s"
    argv = ["phantom", "specimen", "--out", str(root), "--seed", "0", "--margin-mm", "1.5", "--dicom"]
    assert main([*argv, *SMALL_PHANTOM_ARGS]) == 0
    return root


@pytest.fixture
def case_copy(specimen_case: Path, tmp_path: Path) -> Path:
    """A private copy of the phantom's NIfTI inputs (ct, pet, truth.json) and its DICOM folders."""
    target = tmp_path / "case"
    target.mkdir()
    for name in ("ct.nii.gz", "pet.nii.gz", "truth.json"):
        shutil.copy2(specimen_case / name, target / name)
    shutil.copytree(specimen_case / "dicom", target / "dicom")
    return target
