"""The nnU-Net v2 bridge: channels on the PET grid with the declared normalisation, patient-grouped folds, and
predictions imported back where `petct response` reads them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.io import read_image


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    lines = ["patient_id,baseline,followup"]
    for i, response in enumerate(["PMR", "PMD"]):
        make = ["phantom", "petct", "--out", str(root / f"p{i}"), "--seed", str(30 + i), "--response", response]
        assert main([*make, "--lesions", "3", "--ct-spacing-mm", "5", "--pet-spacing-mm", "8"]) == 0
        lines.append(f"p{i},p{i}/baseline,p{i}/followup")
    (root / "patients.csv").write_text("\n".join(lines) + "\n")
    return root


def test_followup_export_channels_and_declared_normalisation(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "Dataset502_Followup"
    args = ["petct", "nnunet-export", "--patients", str(cohort / "patients.csv"), "--kind", "followup"]
    assert main([*args, "--out", str(out)]) == 0
    doc = json.loads((out / "dataset.json").read_text())
    # autoPET's order (CT _0000, PET _0001), the CT normalised as CT and never the PET
    assert doc["channel_names"] == {"0": "CT", "1": "noNorm", "2": "noNorm", "3": "noNorm"}
    assert doc["breastseg"]["channel_order"] == "autopet" and doc["breastseg"]["channels"][0].startswith("CT")
    assert doc["breastseg"]["patients"] == {"p0_followup": "p0", "p1_followup": "p1"} and doc["numTraining"] == 2
    pet = read_image(cohort / "p0" / "followup" / "pet.nii.gz")
    channels = [read_image(out / "imagesTr" / f"p0_followup_{c:04d}.nii.gz") for c in range(4)]
    for image in channels:
        assert image.grid.same_as(pet.grid)  # every channel on the follow-up PET grid
    suv = pet.array * json.loads((cohort / "p0" / "followup" / "truth.json").read_text())["pet"]["suvbw_per_bqml"]
    np.testing.assert_allclose(channels[1].array, np.clip(suv, 0, 5), rtol=1e-5, atol=1e-5)
    assert channels[0].array.min() > -1100 and channels[0].array.max() > 500  # HU (air with noise), bone included
    # the earlier order on request: the same images, PET and CT swapped (the registered channels, 2 and 3, stay
    # where they were; a second registration run need not repeat the first to the last bit)
    legacy = tmp_path / "Dataset503_Legacy"
    assert main([*args, "--channel-order", "pet-first", "--out", str(legacy)]) == 0
    assert json.loads((legacy / "dataset.json").read_text())["channel_names"]["1"] == "CT"
    for a, b in ((0, 1), (1, 0)):
        legacy_image = read_image(legacy / "imagesTr" / f"p0_followup_{a:04d}.nii.gz").array
        np.testing.assert_array_equal(legacy_image, channels[b].array)
    # the registered baseline mask overlaps the follow-up lesions it shrank into (PMR)
    label = read_image(out / "labelsTr" / "p0_followup.nii.gz").array > 0
    assert (channels[3].array > 0)[label].mean() > 0.6
    assert set(np.unique(channels[3].array)) <= {0.0, 1.0}


def test_baseline_export_and_prediction_import(cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "Dataset501_Baseline"
    assert main(["petct", "nnunet-export", "--patients", str(cohort / "patients.csv"), "--out", str(out)]) == 0
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["channel_names"] == {"0": "CT", "1": "noNorm"} and len(list((out / "imagesTr").iterdir())) == 4
    # stand-in for nnUNetv2_predict: the reference labels as "predictions"
    preds = tmp_path / "preds"
    preds.mkdir()
    for case in doc["breastseg"]["patients"]:
        shutil.copyfile(out / "labelsTr" / f"{case}.nii.gz", preds / f"{case}.nii.gz")
    assert main(["petct", "nnunet-import", "--predictions", str(preds), "--dataset", str(out)]) == 0
    imported = cohort / "p1" / "baseline" / "lesions_nnunet.nii.gz"
    assert imported.is_file()
    np.testing.assert_array_equal(
        read_image(imported).array > 0, read_image(cohort / "p1" / "baseline" / "lesions.nii.gz").array > 0
    )
    (preds / "p0_baseline.nii.gz").unlink()
    assert main(["petct", "nnunet-import", "--predictions", str(preds), "--dataset", str(out)]) == 2
    assert "no prediction p0_baseline.nii.gz" in capsys.readouterr().err


def test_splits_hold_out_the_patients_petct_train_holds_out() -> None:
    """splits_final.json = petct train's folds: patients grouped, balanced by site, following the seed."""
    from breastseg.learn.splits import stratified_group_folds
    from breastseg.workflows.petct.longitudinal import PatientScans
    from breastseg.workflows.petct.nnunet import nnunet_splits

    patients = [PatientScans(f"p{i}", Path(f"p{i}/b"), None, "A" if i < 5 else "B") for i in range(10)]
    cases = {f"p{i}_baseline": f"p{i}" for i in range(10)}
    site = {p.patient_id: p.site for p in patients}
    for seed in (0, 1):
        splits = nnunet_splits(patients, cases, 5, seed)
        held_out = stratified_group_folds(site, 5, seed)  # what petct train holds out
        assert [sorted(cases[c] for c in s["val"]) for s in splits] == [sorted(h) for h in held_out]
        for s in splits:
            assert sorted(s["train"] + s["val"]) == sorted(cases) and not set(s["train"]) & set(s["val"])
            assert sorted(site[cases[c]] for c in s["val"]) == ["A", "B"]  # one patient of each site
    assert nnunet_splits(patients, cases, 5, 0) != nnunet_splits(patients, cases, 5, 1)
