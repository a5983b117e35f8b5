"""Statistical tests and agreement measures used by the four studies.

SciPy does the distribution work underneath; what is written here is what SciPy lacks (exact McNemar on
paired predictions, Holm, Lin's CCC with its confidence interval, Bland–Altman, DeLong, paired TOST with
asymmetric bounds, Youden's cut-off). Inputs are 1D sequences of equal length where paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from breastseg.errors import InputError


@dataclass(frozen=True)
class TestResult:
    """A test statistic and its two-sided p-value (unless the test says otherwise)."""

    statistic: float
    p_value: float


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"paired samples must be 1D and equally long, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("paired samples contain NaN or inf; decide what a missing value means before testing")
    return x, y


# ---------------------------------------------------------------------------------------------------
# classical tests (SciPy)
# ---------------------------------------------------------------------------------------------------
def wilcoxon(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Wilcoxon signed-rank test of paired samples (two-sided; exact for small samples without ties)."""
    x, y = _paired(a, b)
    if np.all(x == y):
        return TestResult(0.0, 1.0)
    res = stats.wilcoxon(x, y)
    return TestResult(float(res.statistic), float(res.pvalue))


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Mann–Whitney U test of two independent samples (two-sided); the statistic is U of ``a``."""
    res = stats.mannwhitneyu(np.asarray(a, float), np.asarray(b, float), alternative="two-sided")
    return TestResult(float(res.statistic), float(res.pvalue))


def ks_normality(x: Sequence[float]) -> TestResult:
    """Kolmogorov–Smirnov test of normality against N(mean, sd) estimated from ``x``.

    As in the PET/CT study. Estimating the parameters from the data makes the plain KS p-value
    conservative (Lilliefors); a small p-value still rejects normality.
    """
    v = np.asarray(x, dtype=float)
    if v.size < 3 or np.std(v) == 0:
        raise InputError("normality needs at least 3 values that are not all equal")
    res = stats.kstest(v, "norm", args=(v.mean(), v.std(ddof=1)))
    return TestResult(float(res.statistic), float(res.pvalue))


def spearman(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Spearman rank correlation ρ and its two-sided p-value."""
    x, y = _paired(a, b)
    res = stats.spearmanr(x, y)
    return TestResult(float(res.statistic), float(res.pvalue))


# ---------------------------------------------------------------------------------------------------
# McNemar and Holm
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test: ``only_a`` cases positive for a only, ``only_b`` for b only."""

    only_a: int
    only_b: int
    p_value: float


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> McNemarResult:
    """Exact (binomial) McNemar test on two methods' paired binary predictions.

    ``p = min(1, 2 · P(X ≤ min(n01, n10)))`` with ``X ~ Bin(n01 + n10, 1/2)``; 1.0 when no pair disagrees.
    """
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"paired predictions must be 1D and equally long, got {x.shape} and {y.shape}")
    only_a, only_b = int(np.count_nonzero(x & ~y)), int(np.count_nonzero(~x & y))
    n = only_a + only_b
    p = 1.0 if n == 0 else min(1.0, 2.0 * float(stats.binom.cdf(min(only_a, only_b), n, 0.5)))
    return McNemarResult(only_a, only_b, p)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Bonferroni–Holm step-down adjustment.

    Returns:
        ``(adjusted p-values, reject)`` in the input order; adjusted values are monotone and capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise InputError("p-values must be a 1D list of numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted, adjusted <= alpha


# ---------------------------------------------------------------------------------------------------
# agreement
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CCCResult:
    """Lin's concordance correlation coefficient with its confidence interval (Fisher z-transform)."""

    ccc: float
    ci_low: float
    ci_high: float
    pearson_r: float
    bias_correction: float


def lins_ccc(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> CCCResult:
    """Lin's CCC ``ρc = 2 s_xy / (s_x² + s_y² + (x̄ − ȳ)²)`` (1/n moments, Lin 1989).

    The interval uses Lin's asymptotic variance of ``z = atanh(ρc)``:
    ``var(z) = [ (1−r²) ρc² / ((1−ρc²) r²) + 2 ρc³ (1−ρc) u² / (r (1−ρc²)²) − ρc⁴ u⁴ / (2 r² (1−ρc²)²) ] / (n − 2)``
    with ``u = (x̄ − ȳ) / sqrt(s_x s_y)`` (as DescTools' ``CCC(ci = "z-transform")``).
    """
    x, y = _paired(a, b)
    n = x.size
    if n < 3:
        raise InputError("Lin's CCC needs at least 3 pairs")
    sx2, sy2 = x.var(), y.var()
    sxy = float(np.mean((x - x.mean()) * (y - y.mean())))
    if sx2 == 0 or sy2 == 0:
        raise InputError("Lin's CCC is undefined when one measurement is constant")
    diff = x.mean() - y.mean()
    rho_c = 2 * sxy / (sx2 + sy2 + diff**2)
    r = sxy / np.sqrt(sx2 * sy2)
    u = diff / (sx2 * sy2) ** 0.25
    if abs(rho_c) >= 1:
        return CCCResult(float(rho_c), float(rho_c), float(rho_c), float(r), float(rho_c / r))
    var_z = (
        (1 - r**2) * rho_c**2 / ((1 - rho_c**2) * r**2)
        + 2 * rho_c**3 * (1 - rho_c) * u**2 / (r * (1 - rho_c**2) ** 2)
        - rho_c**4 * u**4 / (2 * r**2 * (1 - rho_c**2) ** 2)
    ) / (n - 2)
    z = np.arctanh(rho_c)
    half = stats.norm.ppf(0.5 + confidence / 2) * np.sqrt(var_z)
    return CCCResult(float(rho_c), float(np.tanh(z - half)), float(np.tanh(z + half)), float(r), float(rho_c / r))


@dataclass(frozen=True)
class BlandAltman:
    """Bland–Altman agreement of ``a − b``: bias, SD of differences and 95 % limits of agreement."""

    bias: float
    sd: float
    lower_loa: float
    upper_loa: float
    bias_ci: tuple[float, float]
    n: int


def bland_altman(a: Sequence[float], b: Sequence[float]) -> BlandAltman:
    """Bias (mean of ``a − b``), SD (n−1), limits ``bias ± 1.96 SD`` and the t-interval of the bias."""
    x, y = _paired(a, b)
    d = x - y
    n = d.size
    if n < 2:
        raise InputError("Bland–Altman needs at least 2 pairs")
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n))
    return BlandAltman(bias, sd, bias - 1.96 * sd, bias + 1.96 * sd, (bias - half, bias + half), n)


# ---------------------------------------------------------------------------------------------------
# ROC
# ---------------------------------------------------------------------------------------------------
def _labels_scores(
    labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise InputError(f"labels and scores must be 1D and equally long, got {y.shape} and {s.shape}")
    if y.all() or not y.any():
        raise InputError("ROC analysis needs both positive and negative cases")
    return y, s


@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC: a case is called positive when ``score >= threshold``."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float


def roc_curve(labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray) -> RocCurve:
    """ROC curve over all distinct score thresholds (highest first), and its area (Mann–Whitney AUC)."""
    y, s = _labels_scores(labels, scores)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    ends = np.concatenate([np.flatnonzero(np.diff(s_sorted)), [s.size - 1]])
    tps = np.cumsum(y_sorted)[ends]
    fps = (ends + 1) - tps
    tpr = np.concatenate([[0.0], tps / y.sum()])
    fpr = np.concatenate([[0.0], fps / (~y).sum()])
    thresholds = np.concatenate([[np.inf], s_sorted[ends]])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return RocCurve(fpr, tpr, thresholds, auc)


@dataclass(frozen=True)
class YoudenCutoff:
    """The threshold maximising ``J = sensitivity + specificity − 1`` (call positive when score ≥ it)."""

    threshold: float
    sensitivity: float
    specificity: float
    youden_j: float


def youden_cutoff(labels: Sequence[bool], scores: Sequence[float]) -> YoudenCutoff:
    """Youden-optimal cut-off; ties go to the highest threshold (the most specific)."""
    roc = roc_curve(labels, scores)
    j = roc.tpr - roc.fpr
    k = int(np.argmax(j[1:]) + 1)  # skip the +inf threshold (nothing called positive)
    return YoudenCutoff(float(roc.thresholds[k]), float(roc.tpr[k]), float(1 - roc.fpr[k]), float(j[k]))


def _placements(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components V10 (per positive) and V01 (per negative), via midranks."""
    m, n = pos.size, neg.size
    allv = np.concatenate([pos, neg])
    r_all = stats.rankdata(allv)
    r_pos = stats.rankdata(pos)
    r_neg = stats.rankdata(neg)
    v10 = (r_all[:m] - r_pos) / n
    v01 = 1.0 - (r_all[m:] - r_neg) / m
    auc = float(v10.mean())
    return auc, v10, v01


@dataclass(frozen=True)
class AucInterval:
    """An ROC AUC with its DeLong standard error and confidence interval (clipped to [0, 1])."""

    auc: float
    se: float
    ci_low: float
    ci_high: float


def auc_ci(labels: Sequence[bool], scores: Sequence[float], confidence: float = 0.95) -> AucInterval:
    """AUC with DeLong's variance ``var(V10)/m + var(V01)/n`` and a normal-approximation interval."""
    y, s = _labels_scores(labels, scores)
    auc, v10, v01 = _placements(s[y], s[~y])
    var = (np.var(v10, ddof=1) if v10.size > 1 else 0.0) / v10.size + (
        np.var(v01, ddof=1) if v01.size > 1 else 0.0
    ) / v01.size
    se = float(np.sqrt(var))
    half = float(stats.norm.ppf(0.5 + confidence / 2) * se)
    return AucInterval(auc, se, max(0.0, auc - half), min(1.0, auc + half))


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test of two correlated AUCs (same cases, two scores). ``z = (AUC_a − AUC_b) / SE``."""

    auc_a: float
    auc_b: float
    z: float
    p_value: float
    se_diff: float


def delong_test(labels: Sequence[bool], scores_a: Sequence[float], scores_b: Sequence[float]) -> DeLongResult:
    """DeLong, DeLong & Clarke-Pearson (1988) test for two correlated ROC AUCs (two-sided).

    Uses the fast midrank form of the structural components (Sun & Xu 2014); identical to the O(mn)
    definition, ties counted as one half.
    """
    y, sa = _labels_scores(labels, scores_a)
    _, sb = _labels_scores(labels, scores_b)
    auc_a, v10a, v01a = _placements(sa[y], sa[~y])
    auc_b, v10b, v01b = _placements(sb[y], sb[~y])
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    cov = s10 / y.sum() + s01 / (~y).sum()
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = auc_a - auc_b
    if var <= 0:
        return DeLongResult(auc_a, auc_b, 0.0 if diff == 0 else float(np.sign(diff) * np.inf), float(diff == 0), 0.0)
    z = diff / np.sqrt(var)
    return DeLongResult(auc_a, auc_b, float(z), float(2 * stats.norm.sf(abs(z))), float(np.sqrt(var)))


# ---------------------------------------------------------------------------------------------------
# equivalence
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TostResult:
    """Two one-sided paired t-tests for equivalence within ``(low, high)`` of the mean difference a − b."""

    mean_difference: float
    p_lower: float
    p_upper: float
    p_value: float
    equivalent: bool


def tost_paired(a: Sequence[float], b: Sequence[float], low: float, high: float, alpha: float = 0.05) -> TostResult:
    """Paired TOST: equivalence when ``low < mean(a − b) < high`` is supported (``p = max(p_lower, p_upper)``).

    As the MRI study compares the network to the readers, with the lowest/highest reader giving the bounds.
    """
    if not low < high:
        raise InputError(f"equivalence bounds must satisfy low < high, got ({low}, {high})")
    x, y = _paired(a, b)
    d = x - y
    n = d.size
    if n < 2:
        raise InputError("TOST needs at least 2 pairs")
    se = d.std(ddof=1) / np.sqrt(n)
    if se == 0:
        inside = low < d.mean() < high
        return TostResult(float(d.mean()), float(not inside), float(not inside), float(not inside), inside)
    p_lower = float(stats.t.sf((d.mean() - low) / se, n - 1))
    p_upper = float(stats.t.cdf((d.mean() - high) / se, n - 1))
    p = max(p_lower, p_upper)
    return TostResult(float(d.mean()), p_lower, p_upper, p, p < alpha)


def tost_between_readers(
    model: Sequence[float], lowest: Sequence[float], highest: Sequence[float], alpha: float = 0.05
) -> TostResult:
    """The MRI study's equivalence procedure: two one-sided paired Wilcoxon signed-rank tests per case — the model
    better than the lowest reader (``p_lower``) and worse than the highest reader (``p_upper``) — equivalence to
    the readers' range when both reject (``p = max``). ``mean_difference`` is the model's mean minus the mean of
    the two readers' means."""
    m, lo = _paired(model, lowest)
    _, hi = _paired(model, highest)
    p_lower = float(stats.wilcoxon(m, lo, alternative="greater").pvalue) if np.any(m != lo) else 1.0
    p_upper = float(stats.wilcoxon(m, hi, alternative="less").pvalue) if np.any(m != hi) else 1.0
    p = max(p_lower, p_upper)
    return TostResult(float(m.mean() - 0.5 * (lo.mean() + hi.mean())), p_lower, p_upper, p, p < alpha)
