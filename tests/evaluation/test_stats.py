"""Statistics against published p-values, hand calculations and peer libraries (statsmodels, scikit-learn,
MLstatkit)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from breastseg.errors import InputError
from breastseg.evaluation import stats as S
from tests.evaluation.test_metrics import specimen_study_predictions


def test_specimen_study_table_4_mcnemar_and_holm() -> None:
    d = specimen_study_predictions()
    p_majority_resunet = S.mcnemar_exact(d["majority"], d["resunet"]).p_value
    p_majority_thresh = S.mcnemar_exact(d["majority"], d["thresh"]).p_value
    p_resunet_thresh = S.mcnemar_exact(d["resunet"], d["thresh"]).p_value
    assert [round(p, 4) for p in (p_majority_resunet, p_majority_thresh, p_resunet_thresh)] == [1.0, 0.0078, 0.0078]
    # 8 discordant specimens, all called positive by thresholding only: p = 2 / 2^8
    res = S.mcnemar_exact(d["resunet"], d["thresh"])
    assert (res.only_a, res.only_b, res.p_value) == (0, 8, 2 / 2**8)
    _, reject = S.holm([p_majority_resunet, p_majority_thresh, p_resunet_thresh])
    assert reject.tolist() == [False, True, True]  # bold in Table 4


def test_holm_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2, 0.0001])
    adjusted, reject = S.holm(p, alpha=0.05)
    ref_reject, ref_adjusted, _, _ = multipletests(p, alpha=0.05, method="holm")
    np.testing.assert_allclose(adjusted, ref_adjusted)
    np.testing.assert_array_equal(reject, ref_reject)


def test_wilcoxon_exact_by_hand() -> None:
    a = np.arange(8, dtype=float) + 10
    b = a - np.arange(1, 9) * 0.1  # all 8 differences positive, distinct
    assert S.wilcoxon(a, b).p_value == pytest.approx(2 / 2**8)
    assert S.wilcoxon(a, a).p_value == 1.0


def test_mann_whitney_and_spearman_by_hand() -> None:
    # completely separated samples of 3 and 3: exact two-sided p = 2 / C(6, 3) = 0.1
    assert S.mann_whitney([1, 2, 3], [4, 5, 6]).p_value == pytest.approx(0.1)
    assert S.spearman([1, 2, 3, 4, 5], [2, 4, 8, 16, 32]).statistic == pytest.approx(1.0)


def test_ks_normality_rejects_skewed_not_normal() -> None:
    rng = np.random.default_rng(0)
    assert S.ks_normality(rng.exponential(size=400)).p_value < 0.001
    assert S.ks_normality(rng.normal(size=400)).p_value > 0.05


def test_lins_ccc_by_hand_and_interval_coverage() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([1.5, 2.5, 3.5, 4.5])  # perfect correlation, bias 0.5
    # s_x² = s_y² = s_xy = 1.25 (1/n moments): ρc = 2.5 / (2.5 + 0.25) = 0.909090…
    assert S.lins_ccc(x, y).ccc == pytest.approx(2.5 / 2.75)
    # interval: ~95 % of simulated intervals hold the true ρc
    rng = np.random.default_rng(1)
    true_rho, sd_x, shift = 0.8, 1.0, 0.3
    cov = [[1.0, true_rho], [true_rho, 1.0]]
    rho_c = 2 * true_rho / (2 + shift**2)
    hits = 0
    for _ in range(400):
        xy = rng.multivariate_normal([0.0, shift], cov, size=60) * sd_x
        r = S.lins_ccc(xy[:, 0], xy[:, 1])
        hits += r.ci_low <= rho_c <= r.ci_high
    assert 0.92 <= hits / 400 <= 0.98


def test_bland_altman_by_hand() -> None:
    a = np.array([10.0, 12.0, 14.0, 16.0])
    b = np.array([9.0, 12.0, 13.0, 17.0])  # differences 1, 0, 1, −1: mean 0.25, sd 0.9574
    ba = S.bland_altman(a, b)
    assert ba.bias == pytest.approx(0.25)
    assert ba.sd == pytest.approx(np.sqrt(((0.75**2) * 2 + 0.25**2 + 1.25**2) / 3))
    assert ba.upper_loa == pytest.approx(0.25 + 1.96 * ba.sd)
    assert ba.bias_ci[1] - ba.bias == pytest.approx(sps.t.ppf(0.975, 3) * ba.sd / 2)


def test_roc_auc_matches_scikit_learn_and_youden_by_hand() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    labels = rng.random(200) < 0.4
    scores = (labels * 0.8 + rng.normal(size=200)).round(1)  # ties
    assert S.roc_curve(labels, scores).auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    # by hand: positives 0.9, 0.8, 0.4; negatives 0.7, 0.3, 0.2, 0.1
    cut = S.youden_cutoff([1, 1, 1, 0, 0, 0, 0], [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1])
    assert (cut.threshold, cut.sensitivity, cut.specificity) == (0.4, 1.0, 0.75)


def _delong_brute_force(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The 1988 definition written out with explicit pairwise kernels (O(m·n))."""

    def components(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = s[labels], s[~labels]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    v10a, v01a = components(a)
    v10b, v01b = components(b)
    m, n = labels.sum(), (~labels).sum()
    var = (np.var(v10a - v10b, ddof=1) / m) + (np.var(v01a - v01b, ddof=1) / n)
    z = (v10a.mean() - v10b.mean()) / np.sqrt(var)
    return float(z), float(2 * sps.norm.sf(abs(z)))


def test_delong_against_definition_and_mlstatkit() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(120) < 0.45
    a = labels * 1.2 + rng.normal(size=120)
    b = (labels * 0.6 + rng.normal(size=120) + 0.5 * a).round(1)  # correlated with a, with ties
    res = S.delong_test(labels, a, b)
    z_bf, p_bf = _delong_brute_force(labels, a, b)
    assert res.z == pytest.approx(z_bf, rel=1e-9)
    assert res.p_value == pytest.approx(p_bf, rel=1e-9)
    mlstatkit = pytest.importorskip("MLstatkit")
    z, p, *_ = mlstatkit.Delong_test(labels.astype(int), a, b, return_ci=False, return_auc=False)
    assert abs(z) == pytest.approx(abs(res.z), rel=1e-6)
    assert p == pytest.approx(res.p_value, rel=1e-6)


def test_tost_matches_statsmodels() -> None:
    from statsmodels.stats.weightstats import ttost_paired

    rng = np.random.default_rng(4)
    readers = rng.normal(0.75, 0.1, 40)
    network = readers + rng.normal(0.01, 0.05, 40)
    res = S.tost_paired(network, readers, -0.05, 0.08)
    p, lower, upper = ttost_paired(network, readers, -0.05, 0.08)
    assert res.p_value == pytest.approx(p)
    assert res.p_lower == pytest.approx(lower[1]) and res.p_upper == pytest.approx(upper[1])
    assert res.equivalent == (p < 0.05)


def test_bad_statistics_input() -> None:
    with pytest.raises(InputError, match="equally long"):
        S.wilcoxon([1, 2], [1, 2, 3])
    with pytest.raises(InputError, match="NaN"):
        S.bland_altman([1, np.nan], [1, 2])
    with pytest.raises(InputError, match="both positive and negative"):
        S.roc_curve([1, 1], [0.2, 0.4])
    with pytest.raises(InputError, match="low < high"):
        S.tost_paired([1, 2], [1, 2], 0.1, -0.1)


def test_auc_interval_is_delongs_by_definition() -> None:
    rng = np.random.default_rng(8)
    labels = rng.random(60) < 0.5
    scores = (labels * 1.0 + rng.normal(size=60)).round(1)
    pos, neg = scores[labels], scores[~labels]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])  # the O(m·n) kernel
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = np.sqrt(np.var(v10, ddof=1) / pos.size + np.var(v01, ddof=1) / neg.size)
    res = S.auc_ci(labels, scores)
    assert res.auc == pytest.approx(psi.mean()) and res.se == pytest.approx(se, rel=1e-9)
    assert res.ci_low == pytest.approx(psi.mean() - 1.959964 * se, rel=1e-6)
    assert S.auc_ci([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]).ci_high == 1.0  # clipped to [0, 1]
