"""The PET/CT networks end to end, trained for real on the CPU (slow-marked, ≈ 35 min on 2 cores; `make test-slow`):
a 12-patient phantom cohort (PMR, SMD, PMD, CMR × 3) → the baseline network (3-fold CV, PET + CT) → the follow-up
network (+ the baseline PET and the baseline network's mask, registered), each with the post-processing its
out-of-fold predictions chose → every scan predicted by the fold that never trained on its patient → biomarkers,
response and cohort commands on the predicted masks → the PERCIST category of every patient matches the phantom's
designed response (12 of 12 on 2026-11-23; 10 of 12 without the post-processing, docs/results/petct.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from breastseg.cli.main import main

pytestmark = pytest.mark.slow

RESPONSES = ["PMR", "SMD", "PMD", "CMR"] * 3
RECIPE = ["--folds", "3", "--epochs", "30", "--patch", "32", "32", "32", "--filters", "16"]
RECIPE += ["--patches-per-scan", "8", "--learning-rate", "1e-3"]


def _summary(out: Path, name: str) -> dict:
    return json.loads((out / "evaluation.json").read_text())["summaries"][name]


def test_phantom_cohort_percist_from_predicted_masks_matches_truth(tmp_path: Path) -> None:
    lines = ["patient_id,baseline,followup"]
    for i, response in enumerate(RESPONSES):
        make = ["phantom", "petct", "--out", str(tmp_path / f"p{i}"), "--seed", str(100 + i), "--response", response]
        assert main([*make, "--lesions", "3", "--ct-spacing-mm", "5", "--pet-spacing-mm", "8"]) == 0
        lines.append(f"p{i},p{i}/baseline,p{i}/followup")
    csv = str(tmp_path / "patients.csv")
    Path(csv).write_text("\n".join(lines) + "\n")
    base, follow = str(tmp_path / "baseline.pt"), str(tmp_path / "followup.pt")
    assert main(["petct", "train", "--patients", csv, "--out", base, *RECIPE]) == 0
    assert main(["petct", "train", "--patients", csv, "--kind", "followup", "--out", follow, *RECIPE]) == 0
    predict = ["petct", "predict", "--patients", csv, "--model"]
    assert main([*predict, base, "--timepoint", "baseline", "--out-name", "lesions_auto.nii.gz"]) == 0
    assert main([*predict, base, "--timepoint", "followup"]) == 0  # the baseline network on follow-ups
    fu = [*predict, follow, "--timepoint", "followup", "--baseline-mask-name", "lesions_auto.nii.gz"]
    assert main([*fu, "--out-name", "lesions_auto.nii.gz"]) == 0

    evaluate = ["petct", "evaluate", "--patients", csv]
    assert (
        main(
            [*evaluate, "--timepoint", "baseline", "--pred-name", "lesions_auto.nii.gz", "--out", str(tmp_path / "eb")]
        )
        == 0
    )
    baseline = _summary(tmp_path / "eb", "lesions_auto.nii.gz")
    assert baseline["mean_dice"] > 0.7 and baseline["lesion_recall"] > 0.9
    both = ["--pred-name", "lesions_auto.nii.gz", "--pred-name", "lesions_pred.nii.gz", "--out", str(tmp_path / "ef")]
    assert main([*evaluate, "--timepoint", "followup", *both]) == 0
    followup_net = _summary(tmp_path / "ef", "lesions_auto.nii.gz")
    baseline_net = _summary(tmp_path / "ef", "lesions_pred.nii.gz")
    assert followup_net["lesion_recall"] > baseline_net["lesion_recall"]  # the registered baseline helps (the study)

    table = ["patient_id,percist,response_json"]
    found = {}
    for i, truth in enumerate(RESPONSES):
        p = tmp_path / f"p{i}"
        bio = ["petct", "biomarkers", "--pet", str(p / "followup" / "pet.nii.gz"), "--pet-info"]
        bio += [str(p / "followup" / "truth.json"), "--mask", str(p / "followup" / "lesions_auto.nii.gz")]
        assert main([*bio, "--out", str(p / "bio")]) == 0
        response = ["petct", "response", "--baseline", str(p / "baseline"), "--followup", str(p / "followup")]
        assert main([*response, "--mask-name", "lesions_auto.nii.gz", "--out", str(p / "resp")]) == 0
        found[f"p{i}"] = (json.loads((p / "resp" / "response.json").read_text())["percist"]["category"], truth)
        table.append(f"p{i},{truth},p{i}/resp/response.json")
    assert all(got == truth for got, truth in found.values()), found
    (tmp_path / "cohort.csv").write_text("\n".join(table) + "\n")
    cohort = ["petct", "cohort", "--table", str(tmp_path / "cohort.csv"), "--biomarker", "sul_peak"]
    assert main([*cohort, "--out", str(tmp_path / "cohort")]) == 0
    auc = json.loads((tmp_path / "cohort" / "cohort.json").read_text())["biomarkers"]["sul_peak"]["auc"]
    assert auc == pytest.approx(1.0)  # ΔSULpeak separates responders (CMR, PMR) from SMD / PMD here
