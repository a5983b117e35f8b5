"""Segmentation and detection metrics used by training, reports and benchmarks alike.

Masks are boolean arrays (anything non-zero counts as foreground) in array order, 2D ``(y, x)`` or 3D
``(z, y, x)``; ``spacing`` follows the same order, in mm. ``ignore`` masks mark pixels excluded from a metric
(the specimen study's "unknown" label).

Empty masks are defined, never NaN:

* both empty: Dice 1, surface Dice 1, HD95 0 mm (perfect agreement on "nothing there");
* exactly one empty (a missed or a phantom lesion): Dice 0, surface Dice 0, and HD95 = the diagonal of the
  image in mm, the largest distance the image can hold. It is finite, so a mean over cases still counts the
  miss as the worst case instead of hiding it (MONAI returns NaN or inf there). Each result records whether
  the value came from this rule (``SurfaceMetrics.hd95_defined``).

Surface distances follow MONAI's voxel-edge definition, so values agree with
``monai.metrics.compute_hausdorff_distance(percentile=95)`` and ``compute_surface_dice`` (non-subvoxel) to
float precision: the surface of a mask is its voxels that have a background face neighbour (6-/4-connectivity,
outside the array is background); distances are Euclidean between voxel centres with the true spacing; HD95 is
the larger of the two directed 95th percentiles (linear interpolation); surface Dice counts surface voxels of
both masks within the tolerance of the other surface. DeepMind's ``surface-distance`` package instead weights
surface elements by their area on a half-voxel-shifted grid, so its values differ slightly (a few per cent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from breastseg.errors import InputError
from breastseg.image import bounding_box
from breastseg.masks import label_components, surface_voxels

#: above this many voxels in the tolerance ball, surface Dice uses a k-d tree instead of a dilation
_MAX_BALL_OFFSETS = 125
#: slack on "distance ≤ tolerance" for float rounding: with spacing (0.8, 0.7) mm the offset (3, 1) is
#: exactly 2.5 mm away but computes as 2.5000000000000004
_TOLERANCE_SLACK_MM = 1e-6


# ---------------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------------
def _as_bool(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    return m if m.dtype == bool else m != 0


def _pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, r = _as_bool(pred), _as_bool(ref)
    if p.shape != r.shape:
        raise InputError(f"prediction shape {p.shape} differs from reference shape {r.shape}")
    return p, r


def _keep(shape: tuple[int, ...], ignore: np.ndarray | None) -> np.ndarray | None:
    if ignore is None:
        return None
    ign = np.asarray(ignore, dtype=bool)
    if ign.shape != shape:
        raise InputError(f"ignore mask shape {ign.shape} differs from the masks' {shape}")
    return ~ign


def _spacing(spacing: Sequence[float] | np.ndarray | float | None, ndim: int) -> np.ndarray:
    sp = np.broadcast_to(np.asarray(1.0 if spacing is None else spacing, dtype=float), (ndim,)).copy()
    if np.any(sp <= 0):
        raise InputError(f"spacing must be positive, got {tuple(sp)}")
    return sp


# ---------------------------------------------------------------------------------------------------
# overlap metrics
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Confusion:
    """Pixel (or case) counts of a binary decision; ratios are ``None`` when their denominator is 0."""

    tp: int
    fp: int
    tn: int
    fn: int

    @staticmethod
    def _ratio(num: int, den: int) -> float | None:
        return num / den if den else None

    @property
    def sensitivity(self) -> float | None:
        """TP / (TP + FN), also called recall."""
        return self._ratio(self.tp, self.tp + self.fn)

    recall = sensitivity

    @property
    def specificity(self) -> float | None:
        return self._ratio(self.tn, self.tn + self.fp)

    @property
    def precision(self) -> float | None:
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def accuracy(self) -> float | None:
        return self._ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn)

    @property
    def f1(self) -> float | None:
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        for name in ("sensitivity", "specificity", "precision", "accuracy", "f1"):
            out[name] = getattr(self, name)
        return out


def confusion(pred: np.ndarray, ref: np.ndarray, ignore: np.ndarray | None = None) -> Confusion:
    """Binary confusion counts of ``pred`` against ``ref``, pixels in ``ignore`` excluded."""
    p, r = _pair(pred, ref)
    keep = _keep(p.shape, ignore)
    if keep is not None:
        p, r = p[keep], r[keep]
    tp = int(np.count_nonzero(p & r))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(r)) - tp
    return Confusion(tp=tp, fp=fp, fn=fn, tn=int(p.size) - tp - fp - fn)


def confusion_matrix(pred: np.ndarray, ref: np.ndarray, n_classes: int, ignore: np.ndarray | None = None) -> np.ndarray:
    """Pixel confusion matrix ``M[ref_class, pred_class]`` for integer label maps ``0..n_classes-1``."""
    p, r = np.asarray(pred).astype(np.int64), np.asarray(ref).astype(np.int64)
    if p.shape != r.shape:
        raise InputError(f"prediction shape {p.shape} differs from reference shape {r.shape}")
    keep = _keep(p.shape, ignore)
    if keep is not None:
        p, r = p[keep], r[keep]
    if p.size and (min(p.min(), r.min()) < 0 or max(p.max(), r.max()) >= n_classes):
        raise InputError(f"labels must lie in 0..{n_classes - 1}")
    return np.bincount(r.ravel() * n_classes + p.ravel(), minlength=n_classes**2).reshape(n_classes, n_classes)


def dice(pred: np.ndarray, ref: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Dice similarity coefficient ``2|P∩R| / (|P| + |R|)``; 1.0 when both are empty."""
    c = confusion(pred, ref, ignore)
    den = 2 * c.tp + c.fp + c.fn
    return 1.0 if den == 0 else 2 * c.tp / den


def pixel_accuracy(pred: np.ndarray, ref: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Fraction of (non-ignored) pixels labelled correctly; 1.0 for an empty selection."""
    acc = confusion(pred, ref, ignore).accuracy
    return 1.0 if acc is None else acc


def recall(pred: np.ndarray, ref: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """TP / (TP + FN); 1.0 when the reference is empty (nothing to find, nothing missed)."""
    value = confusion(pred, ref, ignore).recall
    return 1.0 if value is None else value


def precision(pred: np.ndarray, ref: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """TP / (TP + FP); 1.0 when the prediction is empty (no false claim made)."""
    value = confusion(pred, ref, ignore).precision
    return 1.0 if value is None else value


# ---------------------------------------------------------------------------------------------------
# precision–recall curve
# ---------------------------------------------------------------------------------------------------
def pr_auc(prob: np.ndarray, ref: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Area under the pixel-level precision–recall curve, as average precision.

    ``AP = Σ_n (R_n − R_{n−1}) P_n`` over the distinct probability thresholds, the step-wise estimator
    (scikit-learn's ``average_precision_score``), which unlike trapezoidal interpolation does not overrate
    the curve. Defined as 1.0 when the reference is empty and nothing has a positive probability, 0.0 when
    the reference is empty but the model claims something (no positive can be recalled).
    """
    scores = np.asarray(prob, dtype=np.float64)
    r = np.asarray(ref) != 0
    if scores.shape != r.shape:
        raise InputError(f"probability shape {scores.shape} differs from reference shape {r.shape}")
    keep = _keep(r.shape, ignore)
    if keep is not None:
        scores, r = scores[keep], r[keep]
    scores, r = scores.ravel(), r.ravel()
    n_pos = int(np.count_nonzero(r))
    if n_pos == 0:
        return 1.0 if not np.any(scores > 0) else 0.0
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], r[order]
    distinct = np.flatnonzero(np.diff(s)) if s.size > 1 else np.array([], dtype=int)
    ends = np.concatenate([distinct, [s.size - 1]])
    tps = np.cumsum(t)[ends]
    fps = (ends + 1) - tps
    prec = tps / (tps + fps)
    rec = tps / n_pos
    return float(np.sum(np.diff(np.concatenate([[0.0], rec])) * prec))


# ---------------------------------------------------------------------------------------------------
# surface distances
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SurfaceDistances:
    """Directed surface distances (mm) between two masks' surface voxels.

    Attributes:
        pred_to_ref: for each surface voxel of the prediction, the distance to the nearest reference
            surface voxel (empty when the prediction is empty).
        ref_to_pred: the same the other way round.
        diagonal_mm: the image diagonal, the value used for distances to an empty mask.
    """

    pred_to_ref: np.ndarray
    ref_to_pred: np.ndarray
    diagonal_mm: float
    pred_empty: bool = False
    ref_empty: bool = False

    @property
    def both_empty(self) -> bool:
        return self.pred_empty and self.ref_empty


def _image_diagonal(shape: tuple[int, ...], spacing: np.ndarray) -> float:
    return float(np.linalg.norm((np.asarray(shape) - 1) * spacing))


def surface_distances(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] | np.ndarray | float | None = None
) -> SurfaceDistances:
    """Directed distances between the surfaces of ``pred`` and ``ref`` (k-d tree on surface voxels)."""
    p, r = _pair(pred, ref)
    sp = _spacing(spacing, p.ndim)
    diagonal = _image_diagonal(p.shape, sp)
    pe, re_ = not p.any(), not r.any()
    if pe or re_:
        n_p = int(np.count_nonzero(surface_voxels(p))) if not pe else 0
        n_r = int(np.count_nonzero(surface_voxels(r))) if not re_ else 0
        return SurfaceDistances(np.full(n_p, diagonal), np.full(n_r, diagonal), diagonal, pe, re_)
    box = bounding_box(p | r)
    assert box is not None
    p, r = p[box], r[box]
    offset = [s.start for s in box]
    surf_p, surf_r = surface_voxels(p), surface_voxels(r)
    idx_p, idx_r = np.flatnonzero(surf_p), np.flatnonzero(surf_r)
    coords_p = _index_to_mm(idx_p, p.shape, sp, offset)
    coords_r = _index_to_mm(idx_r, r.shape, sp, offset)
    d_pr = _surface_to_surface(idx_p, surf_r, coords_r, coords_p, sp)
    d_rp = _surface_to_surface(idx_r, surf_p, coords_p, coords_r, sp)
    return SurfaceDistances(d_pr, d_rp, diagonal)


#: the lattice walk before the k-d tree covers up to this many voxels of the finest axis …
_NEAR_REACH_VOXELS = 4
#: … and at most this many offsets (an isotropic 4-voxel ball has 257)
_NEAR_MAX_OFFSETS = 160


def _near_offsets(spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lattice offsets of the largest ball (radius a whole number of finest voxels) with at most
    ``_NEAR_MAX_OFFSETS`` offsets, sorted by length in mm."""
    for k in range(_NEAR_REACH_VOXELS, 0, -1):
        offsets = _ball_offsets(spacing, float(k * spacing.min()))
        if len(offsets) <= _NEAR_MAX_OFFSETS:
            break
    lengths = np.linalg.norm(offsets * spacing, axis=1)
    order = np.argsort(lengths, kind="stable")
    return offsets[order], lengths[order]


def _surface_to_surface(
    flat_q: np.ndarray, target: np.ndarray, target_mm: np.ndarray, query_mm: np.ndarray, spacing: np.ndarray
) -> np.ndarray:
    """Distance from each query surface voxel (flat indices into ``target``'s array) to ``target``'s surface.

    Voxels whose nearest target lies within a couple of voxels are resolved exactly by walking the lattice
    offsets in order of length (first hit = nearest); only the rest go to the k-d tree.
    """
    dist = np.full(flat_q.size, np.nan)
    offsets, lengths = _near_offsets(spacing)
    reach = np.abs(offsets).max(axis=0) if offsets.size else np.zeros(target.ndim, int)
    padded = np.pad(target, [(int(k), int(k)) for k in reach]).ravel()
    padded_shape = np.asarray(target.shape) + 2 * reach
    pstrides = np.cumprod((1, *padded_shape[::-1][:-1]))[::-1]
    # flat index in the padded array of every query voxel
    coords = np.stack(np.unravel_index(flat_q, target.shape), axis=1) + reach
    base = coords @ pstrides
    pending = np.arange(flat_q.size)
    for off, length in zip(offsets, lengths, strict=True):
        if pending.size == 0:
            break
        hit = padded[base[pending] + int(off @ pstrides)]
        dist[pending[hit]] = length
        pending = pending[~hit]
    if pending.size:
        dist[pending] = _nearest_distances(target_mm, query_mm[pending])
    return dist


def _index_to_mm(flat: np.ndarray, shape: tuple[int, ...], spacing: np.ndarray, offset: Sequence[int]) -> np.ndarray:
    coords = np.empty((flat.size, len(shape)), dtype=np.float64)
    rest = flat
    for axis in range(len(shape) - 1, -1, -1):
        rest, coords[:, axis] = np.divmod(rest, shape[axis])
    return (coords + np.asarray(offset)) * spacing


def _nearest_distances(targets: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact distance from each query point to the nearest target point (mm).

    Two passes: a query bounded a little above the 97th percentile estimated on a subsample (most points
    stop early), then an unbounded query for the few beyond the bound. Every distance returned is exact.
    """
    if queries.shape[0] == 0:
        return np.zeros(0)
    tree = cKDTree(targets, leafsize=64, balanced_tree=False, compact_nodes=False)
    step = max(1, queries.shape[0] // 2000)
    sample = tree.query(queries[::step], workers=-1)[0]
    bound = float(np.percentile(sample, 97)) * 1.25 + 1e-3
    dist = tree.query(queries, workers=-1, distance_upper_bound=bound)[0]
    far = ~np.isfinite(dist)
    if far.any():
        dist[far] = tree.query(queries[far], workers=-1)[0]
    return np.asarray(dist)


def _within(a: np.ndarray, b: np.ndarray, tolerance_mm: float) -> int:
    limit = tolerance_mm + _TOLERANCE_SLACK_MM
    return int(np.count_nonzero(a <= limit) + np.count_nonzero(b <= limit))


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else 0.0


def hausdorff95(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] | float | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance in mm (0 if both empty, image diagonal if one is)."""
    return SurfaceMetrics.from_distances(surface_distances(pred, ref, spacing), 1.0).hd95_mm


def _ball_offsets(spacing: np.ndarray, tolerance_mm: float) -> np.ndarray:
    reach = np.floor(tolerance_mm / spacing + 1e-9).astype(int)
    grids = np.meshgrid(*[np.arange(-k, k + 1) for k in reach], indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], axis=1)
    return offsets[np.linalg.norm(offsets * spacing, axis=1) <= tolerance_mm + _TOLERANCE_SLACK_MM]


def _dilate_by_offsets(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mask)
    for off in offsets:
        src = tuple(slice(max(0, -o), mask.shape[a] - max(0, o)) for a, o in enumerate(off))
        dst = tuple(slice(max(0, o), mask.shape[a] - max(0, -o)) for a, o in enumerate(off))
        out[dst] |= mask[src]
    return out


def surface_dice(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] | float | None = None, tolerance_mm: float = 1.0
) -> float:
    """Normalised surface Dice (contour Dice) at ``tolerance_mm``.

    The fraction of both masks' surface voxels that lie within the tolerance of the other surface
    (MONAI's non-subvoxel ``compute_surface_dice``). 1.0 when both masks are empty, 0.0 when one is.
    When the tolerance ball holds few voxels the check is a dilation by the ball (exact, and much faster
    than distances); otherwise distances from the k-d tree are used.
    """
    if tolerance_mm < 0 or not np.isfinite(tolerance_mm):
        raise InputError(f"tolerance must be a finite, non-negative number of mm, got {tolerance_mm}")
    p, r = _pair(pred, ref)
    sp = _spacing(spacing, p.ndim)
    if not p.any() or not r.any():
        return 1.0 if not p.any() and not r.any() else 0.0
    offsets = _ball_offsets(sp, tolerance_mm)
    if len(offsets) > _MAX_BALL_OFFSETS:
        return SurfaceMetrics.from_distances(surface_distances(p, r, sp), tolerance_mm).surface_dice
    box = bounding_box(p | r, margin=1)
    assert box is not None
    sp_, sr = surface_voxels(p[box]), surface_voxels(r[box])
    good = np.count_nonzero(sp_ & _dilate_by_offsets(sr, offsets)) + np.count_nonzero(
        sr & _dilate_by_offsets(sp_, offsets)
    )
    return float(good / (np.count_nonzero(sp_) + np.count_nonzero(sr)))


@dataclass(frozen=True)
class SurfaceMetrics:
    """HD95, average symmetric surface distance and surface Dice from one set of distances.

    ``hd95_defined`` is False when one mask was empty and HD95/ASSD took the image-diagonal value.
    """

    hd95_mm: float
    assd_mm: float
    surface_dice: float
    tolerance_mm: float
    hd95_defined: bool = True

    @classmethod
    def from_distances(cls, d: SurfaceDistances, tolerance_mm: float) -> SurfaceMetrics:
        if d.both_empty:
            return cls(0.0, 0.0, 1.0, tolerance_mm)
        if d.pred_empty or d.ref_empty:
            return cls(d.diagonal_mm, d.diagonal_mm, 0.0, tolerance_mm, hd95_defined=False)
        hd = max(_percentile(d.pred_to_ref, 95), _percentile(d.ref_to_pred, 95))
        n = d.pred_to_ref.size + d.ref_to_pred.size
        assd = float((d.pred_to_ref.sum() + d.ref_to_pred.sum()) / n)
        return cls(hd, assd, _within(d.pred_to_ref, d.ref_to_pred, tolerance_mm) / n, tolerance_mm)


def surface_metrics(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] | float | None = None, tolerance_mm: float = 1.0
) -> SurfaceMetrics:
    """HD95, ASSD and surface Dice in one pass (one set of surface distances for all three)."""
    return SurfaceMetrics.from_distances(surface_distances(pred, ref, spacing), tolerance_mm)


# ---------------------------------------------------------------------------------------------------
# aggregation
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SliceCase:
    """One 2D slice of a patient: prediction (binary or probability), reference and optional ignore mask."""

    pred: np.ndarray
    ref: np.ndarray
    spacing: Sequence[float]
    prob: np.ndarray | None = None
    ignore: np.ndarray | None = None


def patient_metrics(slices: Sequence[SliceCase], tolerance_mm: float = 1.0) -> dict[str, Any]:
    """Per-patient scores from its 2D slices, the way the specimen study combines them.

    Dice, PR-AUC and pixel counts pool every pixel of every slice (ignored pixels excluded). HD95 pools the
    surface distances of the slices where both masks are non-empty (a slice's position in 3D is unknown, so
    a missed slice has no defined distance); surface Dice pools surface voxels of every slice (a surface with
    nothing opposite counts as outside the tolerance). ``hd95_slices`` says how many slices entered HD95.
    """
    if not slices:
        raise InputError("no slices given for the patient")
    keep = [~np.asarray(s.ignore, bool) if s.ignore is not None else np.ones(np.shape(s.ref), bool) for s in slices]
    pred = np.concatenate([(np.asarray(s.pred) != 0)[k] for s, k in zip(slices, keep, strict=True)])
    ref = np.concatenate([(np.asarray(s.ref) != 0)[k] for s, k in zip(slices, keep, strict=True)])
    out: dict[str, Any] = {"dice": dice(pred, ref), "n_slices": len(slices)}
    if all(s.prob is not None for s in slices):
        prob = np.concatenate([np.asarray(s.prob, float)[k] for s, k in zip(slices, keep, strict=True)])
        out["pr_auc"] = pr_auc(prob, ref)
    d_pr: list[np.ndarray] = []
    d_rp: list[np.ndarray] = []
    good = total = 0
    for s, k in zip(slices, keep, strict=True):
        p = (np.asarray(s.pred) != 0) & k
        r = (np.asarray(s.ref) != 0) & k
        d = surface_distances(p, r, s.spacing)
        if not d.pred_empty and not d.ref_empty:
            d_pr.append(d.pred_to_ref)
            d_rp.append(d.ref_to_pred)
            good += _within(d.pred_to_ref, d.ref_to_pred, tolerance_mm)
        total += d.pred_to_ref.size + d.ref_to_pred.size
    out["hd95_slices"] = len(d_pr)
    if d_pr:
        out["hd95_mm"] = max(_percentile(np.concatenate(d_pr), 95), _percentile(np.concatenate(d_rp), 95))
    else:
        out["hd95_mm"] = None
    out["surface_dice"] = float(good / total) if total else 1.0
    out["tolerance_mm"] = tolerance_mm
    return out


def mean_dice(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean of per-scan Dice (each scan counts once; an empty pair counts as 1)."""
    scores = [dice(p, r) for p, r in pairs]
    if not scores:
        raise InputError("no scans given")
    return float(np.mean(scores))


def global_dice(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Dice of all scans pooled as one: ``2 Σ|P∩R| / Σ(|P| + |R|)`` (large lesions weigh more)."""
    inter = total = 0
    n = 0
    for p, r in pairs:
        c = confusion(p, r)
        inter += c.tp
        total += 2 * c.tp + c.fp + c.fn
        n += 1
    if n == 0:
        raise InputError("no scans given")
    return 1.0 if total == 0 else 2 * inter / total


# ---------------------------------------------------------------------------------------------------
# lesions
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LesionDetection:
    """Lesion-wise detection (seed 002): a reference lesion is found (TP) when ≥ 50 % of its voxels are
    covered by the prediction, else FN; a predicted lesion is FP when < 50 % of it overlaps the reference.

    ``recall = TP / (TP + FN)``, ``precision = TP / (TP + FP)`` (the study's definition, which counts TP on
    reference lesions). ``None`` when the denominator is 0.

    The 50 % rules cannot see one predicted component swallowing many lesions (a blob over the body detects every
    lesion and is a single false positive), so ``merged`` counts the predicted components that hold the larger
    part of two or more detected reference lesions, and each reference lesion's row names the predicted component
    that holds most of it (``predicted_label``, 0 for none).
    """

    tp: int
    fn: int
    fp: int
    reference_lesions: list[dict[str, Any]] = field(default_factory=list)
    predicted_lesions: list[dict[str, Any]] = field(default_factory=list)
    merged: int = 0

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None


def _component_table(labels: np.ndarray, n: int, other: np.ndarray, voxel_ml: float) -> list[dict[str, Any]]:
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    overlap = np.bincount(labels[other].ravel(), minlength=n + 1)
    return [
        {
            "label": i,
            "voxels": int(sizes[i]),
            "volume_ml": float(sizes[i] * voxel_ml),
            "overlap_fraction": float(overlap[i] / sizes[i]),
        }
        for i in range(1, n + 1)
    ]


def lesion_detection(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float] | float | None = None,
    connectivity: int = 26,
    threshold: float = 0.5,
) -> LesionDetection:
    """Lesion-wise TP/FN/FP with the 50 % rules and a per-lesion table (volumes in ml)."""
    p, r = _pair(pred, ref)
    voxel_ml = float(np.prod(_spacing(spacing, p.ndim))) / 1000.0
    conn = connectivity if p.ndim == 3 else (8 if connectivity >= 8 else 4)
    ref_labels, n_ref = label_components(r, conn)
    pred_labels, n_pred = label_components(p, conn)
    ref_table = _component_table(ref_labels, n_ref, p, voxel_ml)
    pred_table = _component_table(pred_labels, n_pred, r, voxel_ml)
    both = (ref_labels > 0) & (pred_labels > 0)
    pairs = np.bincount(
        ref_labels[both].astype(np.int64) * (n_pred + 1) + pred_labels[both], minlength=(n_ref + 1) * (n_pred + 1)
    ).reshape(n_ref + 1, n_pred + 1)
    holder = pairs.argmax(axis=1)  # each reference lesion's predicted component with most of its voxels
    for row in ref_table:
        row["detected"] = row["overlap_fraction"] >= threshold
        row["predicted_label"] = int(holder[row["label"]]) if pairs[row["label"]].any() else 0
    for row in pred_table:
        row["false_positive"] = row["overlap_fraction"] < threshold
    tp = sum(row["detected"] for row in ref_table)
    fp = sum(row["false_positive"] for row in pred_table)
    held = np.bincount([row["predicted_label"] for row in ref_table if row["detected"]], minlength=n_pred + 1)
    merged = int((held[1:] >= 2).sum())
    return LesionDetection(tp, n_ref - tp, fp, ref_table, pred_table, merged)


def false_positive_negative_volumes_ml(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] | float | None = None, connectivity: int = 18
) -> tuple[float, float]:
    """autoPET's false-positive and false-negative volumes, in ml.

    FP volume: total volume of predicted connected components that do not touch the reference at all;
    FN volume: total volume of reference components that the prediction does not touch at all
    (18-connectivity, as the autoPET evaluation script).
    """
    p, r = _pair(pred, ref)
    voxel_ml = float(np.prod(_spacing(spacing, p.ndim))) / 1000.0

    def untouched_volume(a: np.ndarray, b: np.ndarray) -> float:
        if not a.any():
            return 0.0
        labels, _ = label_components(a, connectivity if a.ndim == 3 else 8)
        touched = np.unique(labels[b & a])
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        sizes[touched] = 0
        return float(sizes.sum() * voxel_ml)

    return untouched_volume(p, r), untouched_volume(r, p)


def margin_confusion(pred_status: Sequence[bool], true_status: Sequence[bool]) -> Confusion:
    """Confusion of predicted against true margin status per specimen (positive margin = True)."""
    p = np.asarray(pred_status, dtype=bool)
    t = np.asarray(true_status, dtype=bool)
    if p.shape != t.shape or p.ndim != 1:
        raise InputError(f"need two equally long lists of statuses, got {p.shape} and {t.shape}")
    return confusion(p, t)
