"""`breastseg petct evaluate`: Dice, global Dice, the 50 % lesion rules and autoPET volumes, by hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.image import Image
from breastseg.io import write_image

SPACING = (2.0, 2.0, 2.0)  # 0.008 ml voxels


def _mask(boxes: list[tuple[slice, slice, slice]]) -> np.ndarray:
    m = np.zeros((20, 20, 20), np.uint8)
    for box in boxes:
        m[box] = 1
    return m


def test_scores_by_hand(tmp_path: Path) -> None:
    a, b = (slice(2, 6),) * 3, (slice(10, 13), slice(10, 13), slice(10, 13))  # 64 and 27 voxels
    fp = (slice(15, 17), slice(2, 4), slice(2, 4))  # 8 voxels, touching nothing
    scans = {
        "p0/baseline": (_mask([a, b]), _mask([a, fp]), _mask([a, b])),  # reference, pred, perfect
        "p1/baseline": (_mask([a]), _mask([(slice(2, 6), slice(2, 6), slice(2, 4))]), _mask([a])),  # half of a
        "p1/followup": (_mask([]), _mask([fp]), _mask([])),  # nothing to find, 8 false voxels
    }
    for folder, (ref, pred, perfect) in scans.items():
        for name, array in (("lesions", ref), ("pred", pred), ("perfect", perfect)):
            write_image(Image(array, SPACING), tmp_path / folder / f"{name}.nii.gz")
    table = "patient_id,baseline,followup\np0,p0/baseline,\np1,p1/baseline,p1/followup\n"
    (tmp_path / "patients.csv").write_text(table)
    args = ["petct", "evaluate", "--patients", str(tmp_path / "patients.csv"), "--pred-name", "pred.nii.gz"]
    assert main([*args, "--pred-name", "perfect.nii.gz", "--out", str(tmp_path / "eval")]) == 0
    doc = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    s = doc["summaries"]["pred.nii.gz"]
    d0 = 2 * 64 / (2 * 64 + 8 + 27)  # p0: a found, b missed, fp extra
    d1 = 2 * 32 / (32 + 64)  # p1 baseline: half of a
    assert s["scans"] == 3 and s["scans_with_lesions"] == 2
    assert s["mean_dice"] == pytest.approx((d0 + d1) / 2)
    tp, fp_vox, fn = 64 + 32, 8 + 8, 27 + 32
    assert s["global_dice"] == pytest.approx(2 * tp / (2 * tp + fp_vox + fn))
    # lesions: p0 a found (TP), b missed (FN), fp (FP); p1 a half covered = found (≥ 50 %); follow-up fp (FP)
    assert s["lesion_recall"] == pytest.approx(2 / 3) and s["lesion_precision"] == pytest.approx(2 / 4)
    assert s["mean_fp_volume_ml"] == pytest.approx((8 * 0.008 + 0 + 8 * 0.008) / 3)
    assert s["mean_fn_volume_ml"] == pytest.approx(27 * 0.008 / 3)
    assert doc["summaries"]["perfect.nii.gz"]["mean_dice"] == 1.0
    assert doc["comparisons"]["pred.nii.gz vs perfect.nii.gz"]["scans"] == 2
    with (tmp_path / "eval" / "scans_pred.csv").open() as f:
        rows = {r["case"]: r for r in csv.DictReader(f)}
    assert rows["p1_followup"]["dice"] == "" and float(rows["p1_followup"]["fp_volume_ml"]) == pytest.approx(0.064)


def test_a_blob_over_the_body_is_flagged_not_rewarded(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The case the 50 % rules miss: one component over 99 % of the body 'detects' all six lesions."""
    shape = (20, 20, 20)
    ref = np.zeros(shape, np.uint8)
    for k in range(6):  # six 2 × 2 × 2 lesions along a diagonal
        ref[2 + 3 * k : 4 + 3 * k, 2 + 3 * k : 4 + 3 * k, 5:7] = 1
    ct = np.full(shape, -1000.0, np.float32)
    ct[:, 1:19, 1:19] = 40.0  # body: 20 × 18 × 18 voxels
    blob = (ct > -500).astype(np.uint8)
    blob[0, 1, 1] = 0  # not quite all of it
    for name, array in (("lesions", ref), ("blob", blob), ("ct", ct)):
        write_image(Image(array, SPACING, modality="CT" if name == "ct" else None), tmp_path / "p0" / f"{name}.nii.gz")
    (tmp_path / "patients.csv").write_text("patient_id,baseline\np0,p0\n")
    args = ["petct", "evaluate", "--patients", str(tmp_path / "patients.csv"), "--pred-name", "blob.nii.gz"]
    assert main([*args, "--timepoint", "baseline", "--out", str(tmp_path / "eval")]) == 0
    assert "warning: blob.nii.gz covers more than 20 % of the body in 1 scans (p0_baseline)" in capsys.readouterr().err
    summary = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["summaries"]["blob.nii.gz"]
    # the study's rules, unchanged: recall 1, precision 6/7, no false-positive volume (the blob touches lesions)
    assert summary["lesion_recall"] == 1.0 and summary["lesion_precision"] == pytest.approx(6 / 7)
    assert summary["mean_fp_volume_ml"] == 0.0
    # beside them, what gives the blob away, by hand: 6479 voxels predicted for 48 true ones, one merging component
    assert summary["median_volume_ratio"] == pytest.approx((20 * 18 * 18 - 1) / 48)
    assert summary["merged_components"] == 1 and summary["degenerate_scans"] == ["p0_baseline"]
    with (tmp_path / "eval" / "scans_blob.csv").open() as f:
        row = next(csv.DictReader(f))
    assert float(row["body_fraction"]) == pytest.approx(1 - 1 / (20 * 18 * 18))
