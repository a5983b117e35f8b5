"""Read-outs of a breast tumour mask on a DCE exam: volume, longest diameter, kinetic curve type and functional
tumour volume.

* **Volume** (ml): voxels × voxel volume.
* **Longest diameter** (mm): the largest distance between two voxel centres of the mask, in physical space (over
  the convex hull of the surface voxels; a voxel-centre measure, so a sphere of radius r gives 2r − one voxel
  at most).
* **Kinetic curve type** (BI-RADS MRI lexicon, delayed phase): the tumour's mean signal at the last post-contrast
  phase against the first: ``> +10 %`` persistent, within ±10 % plateau, ``< −10 %`` wash-out.
* **Functional tumour volume** (ml; I-SPY / ACRIN 6657, Hylton et al. 2016): voxels of the mask whose early
  percent enhancement ``(S₁ − S₀) / S₀`` is at least ``pe_threshold`` (70 %); the I-SPY signal-enhancement-ratio
  cut is not applied here (it needs its early/late phase timing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from breastseg.errors import InputError
from breastseg.masks import surface_voxels

CurveType = Literal["persistent", "plateau", "washout"]
CURVE_THRESHOLD = 0.10


@dataclass(frozen=True)
class TumourReadout:
    volume_ml: float
    longest_diameter_mm: float
    curve_type: CurveType | None
    late_change_percent: float | None
    functional_volume_ml: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def longest_diameter_mm(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Largest distance (mm) between two voxel centres of ``mask`` (0 for a single voxel or an empty mask)."""
    m = np.asarray(mask, bool)
    if m.sum() < 2:
        return 0.0
    points = np.argwhere(surface_voxels(m)) * np.asarray(spacing, float)
    if len(points) > 3:
        with contextlib.suppress(QhullError):  # flat (one slice) or collinear: all surface points
            points = points[ConvexHull(points).vertices]
    return float(pdist(points).max())


def curve_type(first_post: float, last_post: float) -> tuple[CurveType, float]:
    """``(type, late change in %)`` from the mean signal at the first and the last post-contrast phase."""
    if first_post <= 0:
        raise InputError("kinetic curve: the first post-contrast mean signal must be positive")
    change = (last_post - first_post) / first_post
    kind: CurveType = (
        "persistent" if change > CURVE_THRESHOLD else "washout" if change < -CURVE_THRESHOLD else "plateau"
    )
    return kind, 100.0 * change


def tumour_readout(
    mask: np.ndarray,
    spacing: Sequence[float],
    pre: np.ndarray | None = None,
    post: Sequence[np.ndarray] = (),
    pe_threshold: float = 0.70,
) -> TumourReadout:
    """Volume and longest diameter of ``mask``; with the registered phases also the curve type (needs ≥ 2
    post-contrast phases) and the functional tumour volume (needs the pre-contrast and a post-contrast phase)."""
    m = np.asarray(mask, bool)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    kind = change = ftv = None
    if m.any() and len(post) >= 2:
        kind, change = curve_type(float(np.mean(post[0][m])), float(np.mean(post[-1][m])))
    if m.any() and pre is not None and len(post) >= 1:
        s0 = np.asarray(pre, np.float64)[m]
        s1 = np.asarray(post[0], np.float64)[m]
        with np.errstate(divide="ignore", invalid="ignore"):
            pe = np.where(s0 > 0, (s1 - s0) / s0, 0.0)
        ftv = float(np.count_nonzero(pe >= pe_threshold)) * voxel_ml
    return TumourReadout(float(m.sum()) * voxel_ml, longest_diameter_mm(m, spacing), kind, change, ftv)
