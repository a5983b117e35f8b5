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


def test_network_commands_take_pet_units(trees: dict[str, Path], tmp_path: Path) -> None:
    """A scan folder whose ``pet.nii.gz`` is already SUVbw (no PET info, a name that says nothing) is refused by
    train, predict and nnunet-export until ``--pet-units`` says what it holds; then each reads the SUV as it is:
    the export's PET channel is the file clipped to [0, 5], and predict's mask equals the one it makes on the
    native Bq/ml scan of the same phantom."""
    phantom = trees["phantom"]
    lines = ["patient_id,baseline"]
    for i, scan in enumerate(("baseline", "followup")):
        native, folder = phantom / scan, tmp_path / f"s{i}"
        pet = read_image(native / "pet.nii.gz")
        factor = json.loads((native / "truth.json").read_text())["pet"]["suvbw_per_bqml"]
        folder.mkdir()
        write_image(pet.with_array((pet.array * factor).astype(np.float32)), folder / "pet.nii.gz")
        for name in ("ct.nii.gz", "lesions.nii.gz"):
            write_image(read_image(native / name), folder / name)
        lines.append(f"s{i},s{i}")
    csv = tmp_path / "patients.csv"
    csv.write_text("\n".join(lines) + "\n")
    units = ["--pet-units", "suvBW"]

    export = ["petct", "nnunet-export", "--patients", str(csv), "--folds", "2", "--out"]
    assert main([*export, str(tmp_path / "refused")]) == 2
    assert main([*export, str(tmp_path / "Dataset602_Suv"), *units]) == 0
    suv = read_image(tmp_path / "s0" / "pet.nii.gz").array
    exported = read_image(tmp_path / "Dataset602_Suv" / "imagesTr" / "s0_baseline_0001.nii.gz").array
    np.testing.assert_allclose(exported, np.clip(suv, 0, 5), rtol=1e-6)

    tiny = ["--folds", "2", "--epochs", "1", "--patch", "32", "32", "32", "--filters", "4", "--patches-per-scan", "1"]
    model = str(tmp_path / "m.pt")
    assert main(["petct", "train", "--patients", str(csv), "--out", str(tmp_path / "no.pt"), *tiny]) == 2
    assert main(["petct", "train", "--patients", str(csv), "--out", model, *tiny, *units]) == 0
    predict = ["petct", "predict", "--model", model, "--min-contrast", "off", "--scan"]
    assert main([*predict, str(tmp_path / "s0")]) == 2
    assert main([*predict, str(tmp_path / "s0"), *units]) == 0
    assert main([*predict, str(phantom / "baseline"), "--out-name", "lesions_m.nii.gz"]) == 0
    from_suv = read_image(tmp_path / "s0" / "lesions_pred.nii.gz").array
    assert 0.0 < from_suv.mean() < 1.0  # a mask that depends on the PET, not a constant
    np.testing.assert_array_equal(from_suv, read_image(phantom / "baseline" / "lesions_m.nii.gz").array)
