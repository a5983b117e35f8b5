"""Treatment response between a baseline and a follow-up PET: Δ% per biomarker and the PERCIST 1.0 category.

Δ% = (follow-up − baseline) / baseline × 100 (the study's definition), ``None`` where the baseline is 0 or
missing. PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50:122S; O JH et al., Radiology 2016;280:576), applied to the
scan's SULpeak (the hottest lesion's, as the study did — not necessarily the same lesion at both times):

* **CMR** (complete metabolic response): nothing remains above the liver background — the follow-up SULpeak is
  at most the liver's mean SUL (or no lesion remains segmented) — and no new lesion;
* **PMD** (progressive metabolic disease): SULpeak up by more than 30 % *and* by at least 0.8 SUL, or a new lesion;
* **PMR** (partial metabolic response): SULpeak down by at least 30 % *and* by at least 0.8 SUL, no new lesion;
* **SMD** (stable metabolic disease): otherwise.

The baseline must be measurable — SULpeak ≥ 1.5 × liver mean SUL + 2 SD (PERCIST's threshold) when the liver
reference is known; a baseline below it gives ``not evaluable``. Responders are CMR + PMR, non-responders
SMD + PMD (the study's binarisation). A pair whose registration failed is ``not assessable``
(:func:`breastseg.workflows.petct.longitudinal.assess_response`): no category at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import edt
import numpy as np

from breastseg.errors import InputError

Category = Literal["CMR", "PMR", "SMD", "PMD", "not evaluable", "not assessable"]
RESPONDERS = ("CMR", "PMR")
#: the category when the pair cannot be compared at all (a failed registration): no PERCIST category is given
NOT_ASSESSABLE: Category = "not assessable"
RELATIVE_CHANGE = 0.30
ABSOLUTE_CHANGE_SUL = 0.8


def percent_change(baseline: float | None, followup: float | None) -> float | None:
    """(follow-up − baseline) / baseline × 100; ``None`` when either is missing or the baseline is 0."""
    if baseline is None or followup is None or baseline == 0 or not np.isfinite(baseline):
        return None
    return (followup - baseline) / baseline * 100.0


def percent_changes(
    baseline: Mapping[str, float | None], followup: Mapping[str, float | None]
) -> dict[str, float | None]:
    """Δ% of every biomarker both scans report (the baseline's keys, in order)."""
    return {name: percent_change(value, followup.get(name)) for name, value in baseline.items() if name in followup}


@dataclass(frozen=True)
class LiverReference:
    """The liver's background SUL: mean and SD (PERCIST: a 3 cm sphere in the right lobe)."""

    mean_sul: float
    sd_sul: float

    @property
    def measurability_threshold(self) -> float:
        """PERCIST's minimum baseline SULpeak: 1.5 × mean + 2 SD."""
        return 1.5 * self.mean_sul + 2.0 * self.sd_sul


def liver_reference(
    sul: np.ndarray,
    liver: np.ndarray,
    spacing: Sequence[float],
    lesions: np.ndarray | None = None,
    diameter_mm: float = 30.0,
) -> LiverReference:
    """PERCIST's liver background: mean and SD of SUL in a ``diameter_mm`` (3 cm) sphere of normal liver — centred
    at the liver voxel deepest inside the liver and farthest from any lesion (PERCIST places it in the right
    lobe, away from lesions and vessels). A liver too small for the sphere uses the voxels the sphere finds."""
    liver = np.asarray(liver, bool)
    if liver.shape != np.shape(sul):
        raise InputError(f"liver mask shape {liver.shape} differs from the PET's {np.shape(sul)}")
    normal = liver & ~np.asarray(lesions, bool) if lesions is not None else liver
    if normal.sum() < 2:
        raise InputError("the liver mask is empty (or all lesion): no liver background for PERCIST")
    depth = edt.edt(normal, anisotropy=tuple(float(s) for s in spacing))
    centre = np.unravel_index(int(np.argmax(depth)), depth.shape)
    axes = [(np.arange(n) - c) * s for n, c, s in zip(normal.shape, centre, spacing, strict=True)]
    zz, yy, xx = np.meshgrid(*axes, indexing="ij", sparse=True)
    sphere = (zz**2 + yy**2 + xx**2 <= (diameter_mm / 2.0) ** 2) & normal
    values = np.asarray(sul)[sphere].astype(np.float64)
    if values.size < 2:
        raise InputError("the liver mask holds too few voxels for a liver background")
    return LiverReference(float(values.mean()), float(values.std(ddof=1)))


@dataclass(frozen=True)
class PercistResult:
    """The category with what decided it."""

    category: Category
    baseline_sul_peak: float | None
    followup_sul_peak: float | None
    change_percent: float | None
    change_sul: float | None
    new_lesions: bool
    reason: str

    @property
    def responder(self) -> bool | None:
        """CMR or PMR; ``None`` when not evaluable or not assessable."""
        return None if self.category in ("not evaluable", NOT_ASSESSABLE) else self.category in RESPONDERS


def percist(
    baseline_sul_peak: float | None,
    followup_sul_peak: float | None,
    new_lesions: bool = False,
    liver: LiverReference | None = None,
) -> PercistResult:
    """The PERCIST 1.0 category of a scan pair (see the module docstring). ``followup_sul_peak`` ``None``:
    nothing segmented at follow-up."""

    def result(category: Category, reason: str) -> PercistResult:
        change = percent_change(baseline_sul_peak, followup_sul_peak if followup_sul_peak is not None else 0.0)
        delta = None
        if baseline_sul_peak is not None:
            delta = (followup_sul_peak or 0.0) - baseline_sul_peak
        return PercistResult(category, baseline_sul_peak, followup_sul_peak, change, delta, new_lesions, reason)

    if baseline_sul_peak is None:
        if new_lesions or followup_sul_peak is not None:
            return result("PMD", "no lesion at baseline, lesions at follow-up (new lesions)")
        return result("not evaluable", "no lesion at baseline or follow-up")
    if liver is not None and baseline_sul_peak < liver.measurability_threshold:
        return result(
            "not evaluable",
            f"baseline SULpeak {baseline_sul_peak:.2f} below PERCIST's measurability threshold "
            f"{liver.measurability_threshold:.2f} (1.5 × liver mean + 2 SD)",
        )
    followup = followup_sul_peak if followup_sul_peak is not None else 0.0
    delta = followup - baseline_sul_peak
    relative = delta / baseline_sul_peak
    if new_lesions:
        return result("PMD", "new lesion(s) at follow-up")
    if relative > RELATIVE_CHANGE and delta >= ABSOLUTE_CHANGE_SUL:
        return result("PMD", f"SULpeak +{100 * relative:.0f} % and +{delta:.2f} SUL (> 30 % and ≥ 0.8)")
    if followup_sul_peak is None:
        return result("CMR", "no lesion remains at follow-up")
    if liver is not None and followup_sul_peak <= liver.mean_sul:
        return result("CMR", f"follow-up SULpeak {followup_sul_peak:.2f} ≤ liver background {liver.mean_sul:.2f}")
    if relative <= -RELATIVE_CHANGE and delta <= -ABSOLUTE_CHANGE_SUL:
        return result("PMR", f"SULpeak {100 * relative:.0f} % and {delta:.2f} SUL (≥ 30 % and ≥ 0.8 down)")
    return result("SMD", f"SULpeak {100 * relative:+.0f} % ({delta:+.2f} SUL): neither response nor progression")
