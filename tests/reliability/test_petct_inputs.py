"""Bad inputs to the PET/CT read-outs: a failed registration, swapped or foreign scans, broken masks, NaN in a
lesion — a named error or "not assessable", never a biomarker or a response category from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from breastseg.cli.main import main


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("petct") / "p"
    assert main(["phantom", "petct", "--out", str(root), "--seed", "0", "--response", "PMR"]) == 0
    return root


@pytest.fixture
def copy(patient: Path, tmp_path: Path) -> Path:
    target = tmp_path / "p"
    shutil.copytree(patient, target)
    return target


def _rewrite(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    img = sitk.ReadImage(str(path))
    arr = change(sitk.GetArrayFromImage(img))
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    out.SetSpacing(img.GetSpacing())
    out.SetOrigin(img.GetOrigin())
    out.SetDirection(img.GetDirection())
    sitk.WriteImage(out, str(path))


def _response(copy: Path, out: Path, *extra: str) -> list[str]:
    base, follow = copy / "baseline", copy / "followup"
    return ["petct", "response", "--baseline", str(base), "--followup", str(follow), "--out", str(out), *extra]


def test_the_phantom_pair_registers_and_gets_its_category(copy: Path, tmp_path: Path) -> None:
    assert main(_response(copy, tmp_path / "r")) == 0
    doc = json.loads((tmp_path / "r" / "response.json").read_text())
    assert doc["assessable"] is True and doc["percist"]["category"] == "PMR"
    assert doc["registration"]["log_uptake_correlation"] > 0.95


def test_a_failed_registration_is_not_assessable_never_progression(copy: Path, tmp_path: Path) -> None:
    for name in ("pet.nii.gz", "lesions.nii.gz", "liver.nii.gz", "bone.nii.gz"):  # the follow-up turned 90°
        _rewrite(copy / "followup" / name, lambda a: np.rot90(a, 1, axes=(1, 2)))
    assert main(_response(copy, tmp_path / "r")) == 0
    doc = json.loads((tmp_path / "r" / "response.json").read_text())
    assert doc["assessable"] is False and doc["percist"]["category"] == "not assessable"
    assert doc["percist"]["responder"] is None and doc["new_lesions"]["count"] is None
    assert doc["registration"]["log_uptake_correlation"] < 0.6
    assert "registration failed" in doc["percist"]["reason"]


def test_swapped_scans_are_refused(copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, follow = copy / "baseline", copy / "followup"
    argv = ["petct", "response", "--baseline", str(follow), "--followup", str(base), "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not after the baseline" in err and "swap --baseline and --followup" in err
    assert main([*argv, "--allow-pair-mismatch"]) == 0


def test_scans_of_another_patient_are_refused(copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    truth = copy / "followup" / "truth.json"
    doc = json.loads(truth.read_text())
    doc["pet"]["patient_sex"] = "M" if doc["pet"]["patient_sex"] == "F" else "F"
    truth.write_text(json.dumps(doc))
    assert main(_response(copy, tmp_path / "r")) == 2
    assert "of different patients (sex" in capsys.readouterr().err


def _biomarkers(copy: Path, out: Path, mask: Path) -> list[str]:
    scan = copy / "baseline"
    pet, info = scan / "pet.nii.gz", scan / "truth.json"
    return ["petct", "biomarkers", "--pet", str(pet), "--pet-info", str(info), "--mask", str(mask), "--out", str(out)]


def test_a_float_mask_with_a_non_zero_background_is_refused(
    copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mask = copy / "baseline" / "lesions.nii.gz"
    _rewrite(mask, lambda a: np.where(a > 0, 1.0, 0.05).astype(np.float32))
    assert main(_biomarkers(copy, tmp_path / "b", mask)) == 2
    err = capsys.readouterr().err
    assert "holds values such as 0.05" in err and str(mask) in err
    assert not (tmp_path / "b" / "biomarkers.json").exists()


def test_a_mask_reaching_beyond_the_pet_is_refused(copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mask = copy / "baseline" / "lesions.nii.gz"
    img = sitk.ReadImage(str(mask))
    lesion_z = int(np.argwhere(sitk.GetArrayFromImage(img) > 0)[:, 0].min())
    origin = list(img.GetOrigin())
    origin[2] -= (lesion_z + 1) * img.GetSpacing()[2]  # the lowest lesion now starts below the PET's first slice
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(mask))
    assert main(_biomarkers(copy, tmp_path / "b", mask)) == 2
    assert "lie outside the PET's field of view" in capsys.readouterr().err


def test_nan_inside_a_lesion_is_refused_not_read_as_zero(
    copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    lesions = sitk.GetArrayFromImage(sitk.ReadImage(str(copy / "baseline" / "lesions.nii.gz"))) > 0
    _rewrite(copy / "baseline" / "pet.nii.gz", lambda a: np.where(lesions, np.nan, a).astype(np.float32))
    assert main(_biomarkers(copy, tmp_path / "b", copy / "baseline" / "lesions.nii.gz")) == 2
    assert "NaN or infinite" in capsys.readouterr().err
