"""Reader-study tools: leave-one-out consensus by hand, Dice against it, and the rank-based equivalence test
against SciPy's one-sided Wilcoxon."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from breastseg.errors import InputError
from breastseg.evaluation.stats import tost_between_readers
from breastseg.workflows.mri.readers import leave_one_out_consensus, reader_study


def _disc(cx: float, r: float) -> np.ndarray:
    y, x = np.mgrid[:40, :40]
    return (y - 20) ** 2 + (x - cx) ** 2 <= r**2


def test_consensus_is_the_intersection_of_the_others() -> None:
    a, b, c = _disc(18, 8), _disc(20, 8), _disc(22, 8)
    np.testing.assert_array_equal(leave_one_out_consensus([a, b, c], 0), b & c)
    np.testing.assert_array_equal(leave_one_out_consensus([a, b, c], 1), a & c)
    with pytest.raises(InputError):
        leave_one_out_consensus([a], 0)


def test_reader_study_scores_against_references_without_the_reader() -> None:
    rng = np.random.default_rng(0)
    cases = 12
    readers = {f"R{i}": [] for i in range(4)}
    model, prob = [], []
    for _ in range(cases):
        base = rng.uniform(17, 23)
        for i in range(4):
            readers[f"R{i}"].append(_disc(base + rng.normal(0, 0.5), 7 + i))  # R3 draws the widest outlines
        model.append(_disc(base, 8.5))
        y, x = np.mgrid[:40, :40]
        prob.append(np.exp(-((y - 20) ** 2 + (x - base) ** 2) / 100.0))
    result = reader_study(readers, model, prob)
    # by hand for case 0, reader R0: reference = R1 ∩ R2 ∩ R3
    ref = readers["R1"][0] & readers["R2"][0] & readers["R3"][0]
    r0 = readers["R0"][0]
    by_hand = 2 * (r0 & ref).sum() / (r0.sum() + ref.sum())
    assert result["reader_dice_per_case"]["R0"][0] == pytest.approx(by_hand)
    auc = roc_auc_score(
        np.concatenate([(readers["R1"][c] & readers["R2"][c] & readers["R3"][c]).ravel() for c in range(cases)]),
        np.concatenate([p.ravel() for p in prob]),
    )
    assert result["readers"]["R0"]["model_auc"] == pytest.approx(auc)
    eq = result["equivalence"]
    assert eq["lowest_reader"] != eq["highest_reader"]
    assert result["cases"] == cases and len(result["model_dice_per_case"]) == cases


def test_tost_between_readers_equals_scipy_one_sided_tests() -> None:
    rng = np.random.default_rng(1)
    low = rng.uniform(0.5, 0.7, 30)
    high = low + rng.uniform(0.1, 0.2, 30)
    model = low + rng.uniform(0.02, 0.12, 30)
    res = tost_between_readers(model, low, high)
    assert res.p_lower == pytest.approx(stats.wilcoxon(model, low, alternative="greater").pvalue)
    assert res.p_upper == pytest.approx(stats.wilcoxon(model, high, alternative="less").pvalue)
    assert res.equivalent
    assert not tost_between_readers(high + 0.05, low, high).equivalent  # above the best reader: not equivalent
