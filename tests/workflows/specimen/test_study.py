"""The study protocol end to end on a tiny cohort, checked against independent references.

One run of ``breastseg specimen study`` (2 × 2 nested folds, 1 trial, 2 epochs) on 6 NST patients and 3 specimens,
one of which belongs to a lamella patient. The tables are recomputed here from the per-case rows with SciPy and
statsmodels (not with breastseg), the splits are checked against the bundles' own records, and a rerun must
resume from the saved models without training anything.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from breastseg.cli.main import main
from breastseg.phantoms.specimen_cohort import CohortConfig, write_cohort
from breastseg.workflows.specimen.bundle import ModelBundle
from breastseg.workflows.specimen.lamellae import read_lamellae
from breastseg.workflows.specimen.study import StudyConfig, run_study

OUTER, INNER = 2, 2


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("study")
    write_cohort(
        root / "cohort",
        CohortConfig(
            nst_patients=6,
            lamellae_per_patient=2,
            specimen_margins_mm=(None, 1.0, 3.0),
            shared_specimens=1,
            ct_spacing_mm=0.5,
            pet_spacing_mm=1.0,
        ),
    )
    args = ["specimen", "study", "--data", str(root / "cohort"), "--out", str(root / "out"), "--input", "petct"]
    args += ["--input", "ct", "--outer", str(OUTER), "--inner", str(INNER), "--trials", "1", "--epochs", "2"]
    assert main(args) == 0
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _value(text: str) -> float | None:
    return None if text in ("", "None") else float(text)


def test_nested_splits_never_share_a_patient(study: Path) -> None:
    doc = json.loads((study / "out" / "study.json").read_text())
    patients = {f"nst{i:03d}" for i in range(6)}
    tests = [set(f["test"]) for f in doc["splits"]]
    assert set().union(*tests) == patients and sum(len(t) for t in tests) == len(patients)
    for k, fold in enumerate(doc["splits"]):
        bundle = ModelBundle.load(study / "out" / "models" / "petct" / f"fold{k}.pt")
        assert len(bundle.members) == INNER
        validated = []
        for member, inner in zip(bundle.members, fold["inner"], strict=True):
            assert set(member.training_patients) == set(inner["train"])
            assert not (set(member.training_patients) | set(member.validation_patients)) & tests[k]
            assert not set(member.training_patients) & set(member.validation_patients)
            validated += member.validation_patients
        assert sorted(validated) == sorted(patients - tests[k])


def test_every_test_patient_scored_once_per_input_and_method(study: Path) -> None:
    rows = _rows(study / "out" / "per_patient.csv")
    keys = [(r["input"], r["method"], r["patient_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 2 * 6
    for r in rows:
        assert 0.0 <= float(r["dice"]) <= 1.0 and 0.0 <= float(r["pr_auc"]) <= 1.0


def test_table2_matches_scipy_and_statsmodels(study: Path) -> None:
    rows = _rows(study / "out" / "per_patient.csv")
    table = _rows(study / "out" / "table2.csv")
    for inputs in ("petct", "ct"):
        entries = [e for e in table if e["input"] == inputs]
        p_values = []
        for e in entries:
            metric = e["metric"]
            by = {
                m: {r["patient_id"]: _value(r[metric]) for r in rows if r["input"] == inputs and r["method"] == m}
                for m in ("threshold", "resunet")
            }
            both = [
                p for p in sorted(by["threshold"]) if by["threshold"][p] is not None and by["resunet"][p] is not None
            ]
            a = np.array([by["threshold"][p] for p in both], float)
            b = np.array([by["resunet"][p] for p in both], float)
            assert int(e["n"]) == len(both)
            assert float(e["threshold_mean"]) == pytest.approx(a.mean())
            assert float(e["resunet_sd"]) == pytest.approx(b.std(ddof=1))
            expected = 1.0 if np.all(a == b) else stats.wilcoxon(a, b).pvalue
            assert float(e["p_value"]) == pytest.approx(expected)
            p_values.append(float(e["p_value"]))
        reject, adjusted, _, _ = multipletests(p_values, alpha=0.05, method="holm")
        assert [float(e["p_holm"]) for e in entries] == pytest.approx(adjusted)
        assert [e["significant"] == "True" for e in entries] == list(reject)
    md = (study / "out" / "table2.md").read_text()
    dsc = next(e for e in table if e["input"] == "petct" and e["metric"] == "dice")
    assert f"{float(dsc['resunet_mean']):.2f} ± {float(dsc['resunet_sd']):.2f}" in md


def test_margin_tables_and_leakage_guard(study: Path) -> None:
    specimens = _rows(study / "out" / "specimens.csv")
    assert specimens[0]["patient_id"] == "nst000"
    truth = [s["true_positive_margin"] == "True" for s in specimens]
    assert truth == [True, False, False]
    # nst000's lamellae trained or validated every model except those of its own test fold
    assert [int(s["resunet_models_used"]) for s in specimens] == [INNER, OUTER * INNER, OUTER * INNER]
    assert [int(s["threshold_models_used"]) for s in specimens] == [1, OUTER, OUTER]
    table3 = {r["method"]: r for r in _rows(study / "out" / "table3.csv")}
    correct = {}
    for method in ("threshold", "resunet"):
        called = [s[f"{method}_positive"] == "True" for s in specimens]
        tp = sum(c and t for c, t in zip(called, truth, strict=True))
        fp = sum(c and not t for c, t in zip(called, truth, strict=True))
        assert (int(table3[method]["tp"]), int(table3[method]["fp"])) == (tp, fp)
        correct[method] = [c == t for c, t in zip(called, truth, strict=True)]
    (t4,) = _rows(study / "out" / "table4.csv")
    only_a = sum(a and not b for a, b in zip(correct["resunet"], correct["threshold"], strict=True))
    only_b = sum(b and not a for a, b in zip(correct["resunet"], correct["threshold"], strict=True))
    n = only_a + only_b
    expected = 1.0 if n == 0 else min(1.0, stats.binomtest(min(only_a, only_b), n, 0.5).pvalue)
    assert float(t4["p_value"]) == pytest.approx(expected)
    assert (study / "out" / "fig3_boxplot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_resumes_from_saved_models(study: Path) -> None:
    before = _rows(study / "out" / "per_patient.csv")
    slices = read_lamellae([study / "cohort" / "lamellae" / "manifest.csv"])
    cfg = StudyConfig(inputs=("petct",), outer=OUTER, inner=INNER, trials=1, epochs=2)
    result = run_study(slices, [], study / "out", cfg)
    storage = f"sqlite:///{study / 'out' / 'optuna.db'}"
    for k in range(OUTER):  # no trial was added: the fold bundles were loaded
        trials = optuna.load_study(study_name=f"specimen-petct-fold{k}-seed0", storage=storage).trials
        assert len(trials) == 1
    again = {(r["patient_id"], r["method"]): r["dice"] for r in result.patient_rows}
    for r in before:
        if r["input"] == "petct":
            assert again[(r["patient_id"], r["method"])] == pytest.approx(float(r["dice"]))


def test_a_not_assessable_specimen_is_left_out_of_the_scores_and_wrong_for_mcnemar() -> None:
    from breastseg.workflows.specimen.study import margin_tables

    rows = [  # truth: positive, negative, positive; the network cannot read the third
        {"true_positive_margin": True, "threshold_positive": True, "resunet_positive": True},
        {"true_positive_margin": False, "threshold_positive": True, "resunet_positive": False},
        {"true_positive_margin": True, "threshold_positive": True, "resunet_positive": None},
    ]
    table3, table4 = margin_tables(rows)
    by = {t["method"]: t for t in table3}
    assert by["resunet"]["not_assessable"] == 1 and by["threshold"]["not_assessable"] == 0
    assert (by["resunet"]["tp"], by["resunet"]["tn"], by["resunet"]["fp"], by["resunet"]["fn"]) == (1, 1, 0, 0)
    # McNemar on correctness: resunet right on 1, 2; threshold right on 1, 3 → one discordant pair each way
    assert table4[0]["only_a_correct"] == 1 and table4[0]["only_b_correct"] == 1
