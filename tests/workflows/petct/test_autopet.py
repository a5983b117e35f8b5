"""Whole-body PET/CT as public data comes (autoPET: SUV.nii.gz, CTres.nii.gz, SEG.nii.gz per study folder): the
tree read as patients, biomarkers on SUVbw without any patient data, PERCIST only with the data SUL needs, and the
nnU-Net export in autoPET's channel order — each checked against the same phantom read the native way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.errors import InputError
from breastseg.io import read_image, write_image
from breastseg.workflows.petct.longitudinal import read_autopet, read_patients


def _as_autopet_study(scan: Path, study: Path) -> dict:
    """A phantom scan folder rewritten as an autoPET study: the PET in SUVbw (by the phantom's own factor), the CT
    on the PET grid, the lesions as SEG; returns the phantom's PET truth."""
    truth = json.loads((scan / "truth.json").read_text())["pet"]
    pet = read_image(scan / "pet.nii.gz")
    study.mkdir(parents=True)
    write_image(pet.with_array((pet.array * truth["suvbw_per_bqml"]).astype(np.float32)), study / "SUV.nii.gz")
    write_image(read_image(scan / "ct.nii.gz").resample_onto(pet, order=1, fill=-1000.0), study / "CTres.nii.gz")
    write_image(read_image(scan / "lesions.nii.gz"), study / "SEG.nii.gz")
    return truth


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("autopet")
    phantom = root / "phantom"
    args = ["phantom", "petct", "--out", str(phantom), "--seed", "7", "--response", "PMR", "--lesions", "3"]
    assert main([*args, "--ct-spacing-mm", "5", "--pet-spacing-mm", "8"]) == 0
    tree = root / "FDG-PET-CT-Lesions"
    # the later study's folder name sorts first as text (03 < 12): only its date makes it the follow-up
    _as_autopet_study(phantom / "baseline", tree / "PETCT_0af7" / "12-30-2019-NA-PET-CT Ganzkoerper-12345")
    _as_autopet_study(phantom / "followup", tree / "PETCT_0af7" / "03-15-2020-NA-PET-CT Ganzkoerper-67890")
    _as_autopet_study(phantom / "baseline", tree / "PETCT_1b2c" / "05-01-2018-NA-PET-CT Ganzkoerper-11111")
    return {"phantom": phantom, "tree": tree}


def test_the_tree_is_read_as_patients_in_time_order(trees: dict[str, Path], tmp_path: Path) -> None:
    patients = read_patients(trees["tree"])
    assert [p.patient_id for p in patients] == ["PETCT_0af7", "PETCT_1b2c"]
    assert patients[0].baseline.name.startswith("12-30-2019") and patients[0].followup is not None
    assert patients[0].followup.name.startswith("03-15-2020") and patients[1].followup is None
    crowded = tmp_path / "crowded" / "PETCT_9"
    for day in ("01", "02", "03"):
        (crowded / f"01-{day}-2020-NA").mkdir(parents=True)
        (crowded / f"01-{day}-2020-NA" / "SUV.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="3 studies"):
        read_autopet(tmp_path / "crowded")


def test_biomarkers_on_suv_nifti_equal_the_native_read_out(trees: dict[str, Path], tmp_path: Path) -> None:
    native = trees["phantom"] / "baseline"
    args = ["petct", "biomarkers", "--pet", str(native / "pet.nii.gz"), "--pet-info", str(native / "truth.json")]
    assert main([*args, "--mask", str(native / "lesions.nii.gz"), "--out", str(tmp_path / "native")]) == 0
    study = next((trees["tree"] / "PETCT_0af7").glob("12-30-2019*"))
    args = ["petct", "biomarkers", "--pet", str(study / "SUV.nii.gz"), "--pet-units", "SUVBW"]
    assert main([*args, "--mask", str(study / "SEG.nii.gz"), "--out", str(tmp_path / "autopet")]) == 0
    a = json.loads((tmp_path / "native" / "biomarkers.json").read_text())
    b = json.loads((tmp_path / "autopet" / "biomarkers.json").read_text())
    for key in ("lesion_count", "suv_max", "suv_mean", "mtv_ml", "tlg", "suv_peak"):
        assert b[key] == pytest.approx(a[key], rel=1e-5), key
    assert a["sul_peak"] is not None and b["sul_peak"] is None


def test_response_needs_sul_and_then_matches_the_native_category(trees: dict[str, Path], tmp_path: Path) -> None:
    phantom, tree = trees["phantom"], trees["tree"]
    native = ["petct", "response", "--baseline", str(phantom / "baseline"), "--followup", str(phantom / "followup")]
    assert main([*native, "--out", str(tmp_path / "native")]) == 0
    expected = json.loads((tmp_path / "native" / "response.json").read_text())
    patient = read_patients(tree)[0]
    assert patient.followup is not None
    response = ["petct", "response", "--baseline", str(patient.baseline), "--followup", str(patient.followup)]
    assert main([*response, "--out", str(tmp_path / "no_sul")]) == 2  # SUVbw alone: no PERCIST
    assert not (tmp_path / "no_sul" / "response.json").exists()
    for study, scan in ((patient.baseline, "baseline"), (patient.followup, "followup")):
        pet = json.loads((phantom / scan / "truth.json").read_text())["pet"]
        keys = ("patient_weight_kg", "patient_height_m", "patient_sex")
        (study / "pet_info.json").write_text(json.dumps({"units": "SUVbw", **{k: pet[k] for k in keys}}))
    assert main([*response, "--out", str(tmp_path / "autopet")]) == 0
    got = json.loads((tmp_path / "autopet" / "response.json").read_text())
    assert got["percist"]["category"] == expected["percist"]["category"]
    assert got["percist"]["baseline_sul_peak"] == pytest.approx(expected["percist"]["baseline_sul_peak"], rel=1e-4)


def test_nnunet_export_of_the_tree_is_in_autopet_order(trees: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "Dataset601_AutopetLike"
    assert main(["petct", "nnunet-export", "--patients", str(trees["tree"]), "--out", str(out), "--folds", "2"]) == 0
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["channel_names"] == {"0": "CT", "1": "noNorm"} and set(doc["breastseg"]["patients"].values()) == {
        "PETCT_0af7",
        "PETCT_1b2c",
    }
    study = next((trees["tree"] / "PETCT_1b2c").iterdir())
    suv = read_image(study / "SUV.nii.gz").array
    np.testing.assert_allclose(
        read_image(out / "imagesTr" / "PETCT_1b2c_baseline_0001.nii.gz").array, np.clip(suv, 0, 5)
    )
    np.testing.assert_allclose(
        read_image(out / "imagesTr" / "PETCT_1b2c_baseline_0000.nii.gz").array, read_image(study / "CTres.nii.gz").array
    )
