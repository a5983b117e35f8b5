"""The PET/CT lesion networks end to end on a phantom cohort: nnU-Net's fingerprint by hand, patient-grouped
folds balanced by site, the leakage guard at prediction, checkpoint resume, and the read-out commands on the
predicted masks. Training is tiny here (mechanics); tests/workflows/petct/test_network_slow.py trains for real."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from breastseg.cli.main import main
from breastseg.io import read_image
from breastseg.workflows.petct.inputs import fit_preprocessing, read_channels
from breastseg.workflows.petct.network import PetctModel

RESPONSES = ["PMR", "PMD", "SMD", "CMR", "PMR", "PMD"]
TINY = ["--folds", "3", "--epochs", "2", "--patch", "32", "32", "32", "--filters", "4", "--patches-per-scan", "2"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("petct_cohort")
    lines = ["patient_id,baseline,followup,site"]
    for i, response in enumerate([*RESPONSES, "PMR"]):
        make = ["phantom", "petct", "--out", str(root / f"p{i}"), "--seed", str(50 + i), "--response", response]
        assert main([*make, "--lesions", "3", "--ct-spacing-mm", "5", "--pet-spacing-mm", "8"]) == 0
        if i < len(RESPONSES):  # p6 is a new patient, never trained on
            lines.append(f"p{i},p{i}/baseline,p{i}/followup,{'AB'[i % 2]}")
    (root / "patients.csv").write_text("\n".join(lines) + "\n")
    return root


def test_preprocessing_is_nnunets_fingerprint_computed_by_hand(cohort: Path) -> None:
    folders = [cohort / f"p{i}" / "baseline" for i in range(3)]
    pre = fit_preprocessing([read_channels(f) for f in folders], "baseline")
    hu = []
    for folder in folders:  # SimpleITK directly: CT (linear) onto the PET grid, HU under the lesion label
        pet = sitk.ReadImage(str(folder / "pet.nii.gz"))
        ct = sitk.Resample(sitk.ReadImage(str(folder / "ct.nii.gz")), pet, sitk.Transform(), sitk.sitkLinear, -1000.0)
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "lesions.nii.gz"))) > 0
        hu.append(sitk.GetArrayFromImage(ct)[label])
    values = np.concatenate(hu).astype(np.float64)
    lo, hi = np.percentile(values, [0.5, 99.5])
    assert pre.ct_clip_hu == pytest.approx((lo, hi), abs=0.5)
    assert pre.ct_mean_hu == pytest.approx(np.clip(values, lo, hi).mean(), abs=0.5)
    assert pre.ct_sd_hu == pytest.approx(np.clip(values, lo, hi).std(), rel=0.01)
    assert pre.spacing_mm == (8.0, 8.0, 8.0)
    channels, label, body, grid = pre.network_input(read_channels(folders[0]))
    assert channels.shape == (2, *grid.shape) and label is not None and label.any() and body.mean() > 0.2
    assert channels[0].min() >= 0 and channels[0].max() == pytest.approx(5.0)  # SUV clipped to [0, 5]
    scan = read_channels(folders[0])  # the post-processing measures uptake on the SUV itself, not the channel
    assert scan.suv.max() > 6.0 and np.allclose(np.clip(scan.suv, 0.0, 5.0), scan.images[0].array)


def _members_per_patient(output: str) -> dict[str, list[str]]:
    return {m[0]: m[1].split(", ") for m in re.findall(r"(p\d+): \S+ \(members ([^)]+)\)", output)}


def test_train_predict_and_read_outs_end_to_end(cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = str(cohort / "patients.csv")
    model_path = tmp_path / "baseline.pt"
    ckpt = tmp_path / "ckpt"
    args = ["petct", "train", "--patients", csv, "--out", str(model_path), *TINY, "--checkpoints", str(ckpt)]
    assert main(args) == 0
    model = PetctModel.load(model_path)
    assert [m.fold for m in model.members] == ["fold0", "fold1", "fold2"]
    held_out = [set(m.validation_patients) for m in model.members]
    assert sorted(p for h in held_out for p in h) == [f"p{i}" for i in range(6)]  # each patient held out once
    for m, h in zip(model.members, held_out, strict=True):
        assert not h & set(m.training_patients) and len(m.training_patients) == 4
        assert sorted(int(p[1:]) % 2 for p in h) == [0, 1]  # one site A and one site B patient per fold
    assert "DynUNet" in model_path.with_suffix(".card.md").read_text()
    assert model.net.in_channels == 2 and model.patch_size == (32, 32, 32)
    post = model.postprocessing
    # two epochs of a 4-filter network mark most of the body (held-out Dice ≈ 0.001): no post-processing is chosen
    # on such predictions, and the card says why (tests/workflows/petct/test_postprocess.py has the choice itself)
    assert post is not None and post["min_contrast"] is None and "cover more than 20 % of the body" in post["refused"]
    assert [row["min_contrast"] for row in post["cv"]] == [None]
    assert "not chosen" in model_path.with_suffix(".card.md").read_text()

    # resuming from the finished checkpoints retrains nothing and gives the same weights
    assert main([*args[:5], str(tmp_path / "again.pt"), *args[6:]]) == 0
    again = PetctModel.load(tmp_path / "again.pt")
    for a, b in zip(model.members, again.members, strict=True):
        assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)

    # the baseline network on the same patients' follow-ups: only the fold that never trained on the patient
    capsys.readouterr()
    predict = ["petct", "predict", "--model", str(model_path), "--patients", csv]
    assert main([*predict, "--timepoint", "followup"]) == 0
    used = _members_per_patient(capsys.readouterr().out)
    for m in model.members:
        for p in m.validation_patients:
            assert used[p] == [m.fold]
    mask = read_image(cohort / "p0" / "followup" / "lesions_pred.nii.gz")
    assert mask.grid.same_as(read_image(cohort / "p0" / "followup" / "pet.nii.gz").grid)
    assert set(np.unique(mask.array)) <= {0, 1}
    # a new patient gets the whole ensemble; a training patient's scan named by --patient-id does not
    one = ["petct", "predict", "--model", str(model_path), "--scan"]
    assert main([*one, str(cohort / "p6" / "baseline"), "--patient-id", "p6"]) == 0
    assert _members_per_patient(capsys.readouterr().out)["p6"] == ["fold0", "fold1", "fold2"]
    assert main([*one, str(cohort / "p1" / "baseline"), "--patient-id", "p1"]) == 0
    fold_of_p1 = next(m.fold for m in model.members if "p1" in m.validation_patients)
    assert _members_per_patient(capsys.readouterr().out)["p1"] == [fold_of_p1]

    # the post-processing was chosen on exactly the predictions `predict --min-contrast off` makes
    raw = ["--timepoint", "baseline", "--min-contrast", "off", "--out-name", "lesions_raw.nii.gz"]
    assert main([*predict, *raw]) == 0
    ev = ["petct", "evaluate", "--patients", csv, "--timepoint", "baseline", "--pred-name", "lesions_raw.nii.gz"]
    assert main([*ev, "--out", str(tmp_path / "raw")]) == 0
    summary = json.loads((tmp_path / "raw" / "evaluation.json").read_text())["summaries"]["lesions_raw.nii.gz"]
    unfiltered = post["cv"][0]
    for key in ("global_dice", "lesion_recall", "lesion_precision"):
        assert summary[key] == pytest.approx(unfiltered[key]), key
    assert summary["degenerate_scans"]  # what made train refuse, seen by evaluate on the same predictions
    # --out: the same masks into a folder of their own, the scan folders untouched; evaluate reads them there
    before = {f: sorted(x.name for x in (cohort / f / "baseline").iterdir()) for f in ("p0", "p1")}
    preds = tmp_path / "preds"
    assert main([*predict, *raw, "--out", str(preds)]) == 0
    assert before == {f: sorted(x.name for x in (cohort / f / "baseline").iterdir()) for f in ("p0", "p1")}
    for i in range(6):
        apart = read_image(preds / f"p{i}" / "baseline" / "lesions_raw.nii.gz").array
        np.testing.assert_array_equal(apart, read_image(cohort / f"p{i}" / "baseline" / "lesions_raw.nii.gz").array)
    assert main([*ev, "--pred-dir", str(preds), "--out", str(tmp_path / "raw_apart")]) == 0
    apart_summary = json.loads((tmp_path / "raw_apart" / "evaluation.json").read_text())["summaries"]
    assert apart_summary["lesions_raw.nii.gz"] == summary
    assert main([*predict, "--min-contrast", "nonsense"]) == 2
    assert "'model', 'off' or a ratio" in capsys.readouterr().err
    # choosing again on an existing model (one trained by an older breastseg) stores the same choice
    assert (
        main(["petct", "postprocess", "--model", str(model_path), "--patients", csv, "--out", str(tmp_path / "re.pt")])
        == 0
    )
    assert PetctModel.load(tmp_path / "re.pt").postprocessing == post

    # the follow-up network: 4 channels, the baseline network's baseline masks registered in
    assert main([*predict, "--timepoint", "baseline"]) == 0
    fu_path = tmp_path / "followup.pt"
    assert main(["petct", "train", "--patients", csv, "--kind", "followup", "--out", str(fu_path), *TINY]) == 0
    assert PetctModel.load(fu_path).net.in_channels == 4
    fu_predict = ["petct", "predict", "--model", str(fu_path), "--patients", csv, "--timepoint", "followup"]
    fu_predict += ["--baseline-mask-name", "lesions_pred.nii.gz", "--out-name", "lesions_fu_pred.nii.gz"]
    assert main(fu_predict) == 0
    capsys.readouterr()
    assert main(["petct", "predict", "--model", str(fu_path), "--patients", csv, "--timepoint", "baseline"]) == 2
    assert "follow-up scans only" in capsys.readouterr().err

    # the read-outs run on the predicted masks
    out = tmp_path / "eval"
    evaluate = ["petct", "evaluate", "--patients", csv, "--timepoint", "followup", "--out", str(out)]
    assert main([*evaluate, "--pred-name", "lesions_pred.nii.gz", "--pred-name", "lesions_fu_pred.nii.gz"]) == 0
    assert (out / "evaluation.json").is_file()
    p0 = cohort / "p0"
    response = ["petct", "response", "--baseline", str(p0 / "baseline"), "--followup", str(p0 / "followup")]
    assert main([*response, "--mask-name", "lesions_pred.nii.gz", "--out", str(tmp_path / "resp")]) == 0
    assert (tmp_path / "resp" / "response.json").is_file()
