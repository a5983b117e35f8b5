"""TotalSegmentator bridge: the call contract (with a stand-in module), and weights are never fetched."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.errors import ModelError
from breastseg.evaluation.metrics import dice
from breastseg.io import read_image, write_image
from breastseg.workflows.petct.organs import organ_masks

CLASS_MAP = {1: "spleen", 5: "liver", 27: "vertebrae_L1", 92: "rib_left_1", 100: "femur_left"}


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("organs")
    make = ["phantom", "petct", "--out", str(root), "--seed", "3", "--lesions", "2"]
    assert main([*make, "--ct-spacing-mm", "5", "--pet-spacing-mm", "8"]) == 0
    return root / "baseline"


@pytest.fixture()
def fake_totalsegmentator(monkeypatch: pytest.MonkeyPatch, patient: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """A stand-in ``totalsegmentator`` package: labels liver (5) and bone (27) where the phantom has them, on the
    CT grid, as TotalSegmentator's multilabel output would be; records every call."""
    calls: list[dict[str, Any]] = []
    ct = read_image(patient / "ct.nii.gz")
    liver = read_image(patient / "liver.nii.gz").resample_onto(ct, order=0).array > 0
    bone = read_image(patient / "bone.nii.gz").resample_onto(ct, order=0).array > 0
    labels = np.where(liver, 5, np.where(bone, 27, 0)).astype(np.uint8)
    write_image(ct.with_array(labels, units="label"), tmp_path / "labels.nii.gz")

    def totalsegmentator(input: Any, output: Any = None, **kwargs: Any) -> nib.Nifti1Image:
        calls.append({"input": input, "output": output, **kwargs})
        return nib.load(str(tmp_path / "labels.nii.gz"))

    package = types.ModuleType("totalsegmentator")
    api = types.ModuleType("totalsegmentator.python_api")
    api.totalsegmentator = totalsegmentator  # type: ignore[attr-defined]
    mapping = types.ModuleType("totalsegmentator.map_to_binary")
    mapping.class_map = {"total": CLASS_MAP}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "totalsegmentator", package)
    monkeypatch.setitem(sys.modules, "totalsegmentator.python_api", api)
    monkeypatch.setitem(sys.modules, "totalsegmentator.map_to_binary", mapping)
    return calls


def test_missing_weights_are_refused_without_calling_totalsegmentator(
    fake_totalsegmentator: list, patient: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(tmp_path / "weights"))
    (tmp_path / "weights" / "Dataset297_TotalSegmentator_total_3mm").mkdir(parents=True)  # 298 is missing
    pet = read_image(patient / "pet.nii.gz")
    with pytest.raises(ModelError, match=r"\[298\].*never downloads.*totalseg_download_weights -t total_fast"):
        organ_masks(patient / "ct.nii.gz", pet)
    assert fake_totalsegmentator == []  # TotalSegmentator's own call would have downloaded them


def test_call_contract_and_masks_on_the_pet_grid(
    fake_totalsegmentator: list, patient: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(tmp_path / "weights"))
    for name in ("Dataset297_TotalSegmentator_total_3mm", "Dataset298_TotalSegmentator_total_6mm"):
        (tmp_path / "weights" / name).mkdir(parents=True)
    scan = tmp_path / "scan"
    shutil.copytree(patient, scan)
    assert main(["petct", "organs", "--scan", str(scan)]) == 0
    (call,) = fake_totalsegmentator
    assert call["ml"] is True and call["fast"] is True and call["device"] == "cpu" and call["output"] is None
    assert call["roi_subset"] == ["liver", "femur_left", "rib_left_1", "vertebrae_L1"]  # no spleen
    assert Path(call["input"]).name == "ct.nii.gz"
    pet = read_image(patient / "pet.nii.gz")
    for organ in ("liver", "bone"):
        written = read_image(scan / f"{organ}.nii.gz")
        assert written.grid.same_as(pet.grid)
        # the phantom's masks (PET grid) → CT grid (the stand-in's labels) → PET grid: the round trip keeps them
        assert dice(written.array > 0, read_image(patient / f"{organ}.nii.gz").array > 0) > 0.8


def test_not_installed_says_how_to_install(monkeypatch: pytest.MonkeyPatch, patient: Path) -> None:
    monkeypatch.setitem(sys.modules, "totalsegmentator", None)  # import fails
    monkeypatch.setitem(sys.modules, "totalsegmentator.python_api", None)
    with pytest.raises(ModelError, match="pip install TotalSegmentator"):
        organ_masks(patient / "ct.nii.gz", read_image(patient / "pet.nii.gz"))


def test_organ_masks_round_trip_the_phantom_organs(
    fake_totalsegmentator: list, patient: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(tmp_path / "weights"))
    for name in ("Dataset291_a", "Dataset292_b", "Dataset293_c", "Dataset294_d", "Dataset295_e", "Dataset298_f"):
        (tmp_path / "weights" / name).mkdir(parents=True)
    pet = read_image(patient / "pet.nii.gz")
    liver_truth = read_image(patient / "liver.nii.gz").array > 0
    masks = organ_masks(patient / "ct.nii.gz", pet, fast=False)
    assert fake_totalsegmentator[0]["fast"] is False
    assert dice(masks["liver"], liver_truth) > 0.9
    assert not (masks["liver"] & masks["bone"]).any()
