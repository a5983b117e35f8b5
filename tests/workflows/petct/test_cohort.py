"""`breastseg petct cohort`: ROC / Youden / Mann–Whitney by hand and against scikit-learn and SciPy, agreement
wiring, and a phantom cohort run from `petct response` outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from breastseg.cli.main import main


def _write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_roc_cutoff_and_tests_by_hand(tmp_path: Path) -> None:
    percist = ["PMR", "CMR", "PMR", "PMR", "SMD", "SMD", "PMD", "SMD"]
    sul = [-60.0, -45.0, -35.0, -50.0, -10.0, 5.0, 40.0, -20.0]  # separates perfectly
    tlg = [-70.0, -20.0, -40.0, 10.0, -30.0, 15.0, 60.0, -5.0]  # overlaps
    auto = [4.1, 6.2, 3.3, 8.0, 5.5, 2.9, 7.1, 4.8]
    manual = [4.0, 6.5, 3.1, 7.6, 5.9, 3.0, 7.4, 4.4]
    rows = [
        {
            "patient_id": f"p{i}",
            "percist": p,
            "delta_sul_peak": s,
            "delta_tlg": t,
            "sul_peak_auto": a,
            "sul_peak_manual": m,
        }
        for i, (p, s, t, a, m) in enumerate(zip(percist, sul, tlg, auto, manual, strict=True))
    ]
    table = _write(tmp_path / "cohort.csv", rows)
    assert main(["petct", "cohort", "--table", str(table), "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "cohort.json").read_text())
    assert (doc["patients"], doc["responders"], doc["non_responders"]) == (8, 4, 4)
    s = doc["biomarkers"]["sul_peak"]
    # responders' falls 35–60 %, non-responders' at most 10 %: the most specific perfect cut is a 35 % fall
    assert s["auc"] == 1.0 and s["youden_cutoff_delta_percent"] == -35.0
    assert (s["sensitivity"], s["specificity"]) == (1.0, 1.0)
    responder = [p in ("CMR", "PMR") for p in percist]
    t = doc["biomarkers"]["tlg"]
    assert t["auc"] == pytest.approx(roc_auc_score(responder, [-v for v in tlg]))
    assert t["auc_ci95"][0] < t["auc"] < t["auc_ci95"][1]
    expected_mw = stats.mannwhitneyu(tlg[:4], tlg[4:], alternative="two-sided").pvalue
    assert t["mann_whitney_p"] == pytest.approx(expected_mw)
    assert "sul_peak vs tlg" in doc["delong"]
    agreement = doc["agreement"]["sul_peak"]
    assert agreement["spearman_rho"] == pytest.approx(stats.spearmanr(auto, manual).statistic)
    assert agreement["bland_altman"]["bias"] == pytest.approx(sum(a - m for a, m in zip(auto, manual, strict=True)) / 8)
    for name in ("roc.png", "agreement_sul_peak.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_bad_tables_are_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    table = _write(tmp_path / "c.csv", [{"patient_id": "p1", "percist": "better", "delta_sul_peak": -40}])
    assert main(["petct", "cohort", "--table", str(table), "--out", str(tmp_path / "o")]) == 2
    assert "c.csv, line 2: percist 'better'" in capsys.readouterr().err
    table = _write(tmp_path / "d.csv", [{"patient_id": "p1", "percist": "PMR", "delta_sul_peak": -40}])
    assert main(["petct", "cohort", "--table", str(table), "--out", str(tmp_path / "o")]) == 2
    assert "both responders" in capsys.readouterr().err


def test_phantom_cohort_from_response_outputs(tmp_path: Path) -> None:
    rows = []
    for i, response in enumerate(["PMR", "SMD", "PMD", "CMR", "PMR", "SMD"]):
        patient = tmp_path / f"p{i}"
        make = ["phantom", "petct", "--out", str(patient), "--seed", str(20 + i), "--response", response]
        assert main([*make, "--lesions", "3", "--ct-spacing-mm", "5", "--pet-spacing-mm", "8"]) == 0
        args = ["petct", "response", "--baseline", str(patient / "baseline"), "--followup", str(patient / "followup")]
        assert main([*args, "--out", str(patient / "response")]) == 0
        rows.append({"patient_id": f"p{i}", "percist": response, "response_json": f"p{i}/response/response.json"})
    table = _write(tmp_path / "cohort.csv", rows)
    out = tmp_path / "cohort"
    assert (
        main(
            [
                "petct",
                "cohort",
                "--table",
                str(table),
                "--biomarker",
                "sul_peak",
                "--biomarker",
                "tlg",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads((out / "cohort.json").read_text())
    assert doc["biomarkers"]["sul_peak"]["auc"] == 1.0  # the designed responses separate by their SULpeak fall
    assert (out / "trajectories_sul_peak.png").is_file()
