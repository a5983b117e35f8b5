"""Margin read-out: how far the predicted tumour stays from the specimen surface, where, and how sure.

The study's definition: the minimum distance between the predicted tumour's outer contour and the specimen
contour (Otsu on CT), with the true voxel spacing; positive when ≤ 0.1 mm. Here the distance is measured face
to face on the grid: for every tumour voxel, the distance between its cube and the nearest cube outside the
specimen (:func:`~breastseg.masks.depth_below_surface_mm`); a tumour voxel touching the outside at a face, an edge or
a corner has margin 0 mm, so a touching tumour is positive on any grid. It matches the phantoms' truth.

Beyond the study: the closest point (LPS mm) and the outside point it faces, the face it lies on (±x, ±y, ±z,
or anatomical names from the specimen's orientation), the minimum margin to each of the six faces, for an
ensemble the fraction of members that call the margin positive, and an interval for the minimum margin: the
margins of a wider and a narrower contour of the tumour (:func:`interval_from_masks`; the tumour drawn at a lower
and a higher probability, :func:`margin_interval`, and where there is PET the contrast midpoint beside the
narrower one, :mod:`~breastseg.workflows.specimen.uptake_edge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from breastseg.image import Grid
from breastseg.masks import (
    MARGIN_DECIMALS,
    POSITIVE_MARGIN_MM,
    binarize,
    depth_below_surface_mm,
    distance_to_mask_mm,
    margin_is_positive,
    surface_voxels,
)

#: tumour probabilities whose masks bound the margin interval: the wider mask (≥ 0.3) gives its lower end, the
#: narrower mask (≥ 0.7) its upper end
INTERVAL_PROBABILITIES = (0.3, 0.7)

#: faces by the axis (LPS) and sign of their outward normal
FACES = ("+x", "-x", "+y", "-y", "+z", "-z")
#: the LPS meaning of each face when no orientation is given
LPS_FACE_NAMES = {"+x": "left", "-x": "right", "+y": "posterior", "-y": "anterior", "+z": "superior", "-z": "inferior"}


@dataclass(frozen=True)
class MarginResult:
    """The margin read-out of one tumour mask in one specimen.

    Attributes:
        status: ``"positive"`` / ``"negative"``.
        min_margin_mm: the smallest tumour–surface gap, mm; ``None`` when no tumour was predicted.
        closest_point_mm: LPS (x, y, z) of the tumour voxel nearest the surface.
        surface_point_mm: LPS of the outside voxel it faces.
        closest_face: the face of the specimen there (a key of ``FACES`` or its anatomical name).
        per_face_margin_mm: minimum margin to each face (``None`` for a face with no surface).
        ensemble_positive_fraction: share of ensemble members calling the margin positive.
        reason: why there is no margin (empty prediction), else ``None``.
        interval_mm: (lower, upper) ends of the minimum margin's interval, mm (:func:`margin_interval`); the upper
            end is ``None`` when no voxel reaches the upper probability.
        interval_probabilities: the tumour probabilities the interval's two masks were drawn at (``None`` when the
            masks come from elsewhere: ``interval_basis`` says what they are).
        interval_basis: the interval's two masks in words (e.g. the threshold method's two contours).
    """

    status: str
    min_margin_mm: float | None
    threshold_mm: float
    closest_point_mm: list[float] | None = None
    surface_point_mm: list[float] | None = None
    closest_face: str | None = None
    per_face_margin_mm: dict[str, float | None] = field(default_factory=dict)
    ensemble_positive_fraction: float | None = None
    reason: str | None = None
    interval_mm: tuple[float | None, float | None] | None = None
    interval_probabilities: tuple[float, float] | None = None
    interval_basis: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "margin_status": self.status,
            "min_margin_mm": self.min_margin_mm,
            "positive_margin_threshold_mm": self.threshold_mm,
            "closest_point_mm": self.closest_point_mm,
            "surface_point_mm": self.surface_point_mm,
            "closest_face": self.closest_face,
            "per_face_margin_mm": self.per_face_margin_mm,
            "ensemble_positive_fraction": self.ensemble_positive_fraction,
            "margin_interval_mm": None if self.interval_mm is None else list(self.interval_mm),
            "margin_interval_probabilities": None
            if self.interval_probabilities is None
            else list(self.interval_probabilities),
            "margin_interval_basis": self.interval_basis,
            "reason": self.reason,
        }


def _box_faces(points: np.ndarray, specimen: np.ndarray, spacing: Sequence[float], grid: Grid) -> np.ndarray:
    """Face index (into ``FACES``) of each point, by where it lies on the specimen mapped to a unit cube.

    The direction from the specimen's centre to the point, scaled by the specimen's half-extent per axis,
    picks the face (as a pathologist names the six faces of an oriented specimen). More stable than surface
    normals on a rough surface.
    """
    coords = np.argwhere(specimen)
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    centre = (lo + hi) / 2.0
    half = np.maximum((hi - lo) / 2.0, 1.0) * np.asarray(spacing)
    rel = (points - centre) * np.asarray(spacing) / half  # array order (z, y, x)
    world = rel[:, ::-1] @ grid.direction.T  # LPS (x, y, z)
    axis = np.argmax(np.abs(world), axis=1)
    negative = world[np.arange(len(world)), axis] < 0
    return 2 * axis + negative.astype(int)  # FACES order: +x, -x, +y, -y, +z, -z


def mask_margin_mm(mask: np.ndarray, depth: np.ndarray) -> float | None:
    """The minimum margin of a tumour ``mask``, mm: its smallest ``depth`` below the surface
    (:func:`~breastseg.masks.depth_below_surface_mm` on the mask's grid); ``None`` for an empty mask."""
    return float(depth[mask].min()) if mask.any() else None


def members_positive(members: Sequence[np.ndarray], depth: np.ndarray, threshold_mm: float) -> list[bool]:
    """Each member mask's call: positive when it comes within ``threshold_mm`` of the surface (``depth``: mm below
    the specimen surface on the members' grid, :func:`~breastseg.masks.depth_below_surface_mm`)."""
    return [(m := mask_margin_mm(mask, depth)) is not None and margin_is_positive(m, threshold_mm) for mask in members]


def status_is_settled(
    probability: np.ndarray,
    specimen: np.ndarray,
    depth: np.ndarray,
    threshold_mm: float = POSITIVE_MARGIN_MM,
    band: float = 0.15,
    probability_threshold: float = 0.5,
    keep_largest: bool = True,
) -> bool:
    """Whether the margin status is the same for the tumour drawn at any probability within ``band`` of the
    threshold: positive already at ``probability_threshold + band`` (the narrower mask reaches within
    ``threshold_mm`` of the surface), or negative still at ``probability_threshold − band`` (the wider mask does
    not). Masks post-processed as the read-out's. A status that is not settled depends on probabilities an
    approximation (the distilled student) may have wrong by that much, so the exact members decide it. The two
    masks are :func:`margin_interval`'s at ``probability_threshold ∓ band``."""
    probabilities = (probability_threshold - band, probability_threshold + band)
    wide, narrow = margin_interval(probability, specimen, depth, None, probabilities, keep_largest)
    if narrow is not None and margin_is_positive(narrow, threshold_mm):
        return True
    return wide is None or not margin_is_positive(wide, threshold_mm)


def margin_interval(
    probability: np.ndarray,
    specimen: np.ndarray,
    depth: np.ndarray,
    margin_mm: float | None,
    probabilities: tuple[float, float] = INTERVAL_PROBABILITIES,
    keep_largest: bool = True,
) -> tuple[float | None, float | None]:
    """An interval for the minimum margin from the tumour probability map (same grid as ``specimen`` and ``depth``).

    The tumour is drawn again at the lower and the upper probability of ``probabilities`` (post-processed as the
    read-out's mask: holes filled, largest component, within the specimen): the wider mask's margin is the lower
    end, the narrower mask's the upper end, widened where needed to contain ``margin_mm`` (the read-out's own).
    The upper end is ``None`` when no voxel reaches the upper probability; ``(None, None)`` when there is no tumour
    at the lower one either. How often such an interval covers the true margin is measured on held-out phantoms
    (docs/reference/specimen.md).
    """
    low_p, high_p = probabilities
    wide, narrow = (binarize(probability, p, True, keep_largest, specimen) for p in (low_p, high_p))
    return interval_from_masks(wide, [narrow], depth, margin_mm)


def interval_from_masks(
    wide: np.ndarray, narrow: Sequence[np.ndarray], depth: np.ndarray, margin_mm: float | None
) -> tuple[float | None, float | None]:
    """The margin interval of post-processed tumour masks: the ``wide`` mask's margin is the lower end, the
    farthest of the ``narrow`` masks' margins the upper end (``None``, open, when any of them is empty), widened
    where needed to contain ``margin_mm`` (the read-out's own); the lower end is ``None`` when ``wide`` is empty
    and there is no read-out margin either (see :func:`margin_interval`)."""
    low = mask_margin_mm(wide, depth)
    uppers = [mask_margin_mm(mask, depth) for mask in narrow]
    high = None if not uppers or None in uppers else max(u for u in uppers if u is not None)
    if margin_mm is not None:
        low = margin_mm if low is None else min(low, margin_mm)
        high = None if high is None else max(high, margin_mm)
    return (
        None if low is None else round(low, MARGIN_DECIMALS),
        None if high is None else round(high, MARGIN_DECIMALS),
    )


@dataclass(eq=False)
class IntervalMasks:
    """The tumour contours whose margins bound the minimum margin's interval (:func:`interval_from_masks`, after
    the read-out's post-processing): ``wide`` gives the lower end, the farthest of ``narrow`` the upper end;
    ``basis`` words them, ``probabilities`` are the network's two levels where the contours include its own."""

    wide: np.ndarray
    narrow: tuple[np.ndarray, ...]
    basis: str
    probabilities: tuple[float, float] | None = None


def unsettled_negative(margin: MarginResult) -> str | None:
    """The warning a negative margin must carry when its own interval's lower end lies within the margin rule: the
    tumour drawn generously reaches the surface, so the image does not settle the status (``None`` otherwise, and
    for a positive read-out, which errs on the safe side)."""
    low = margin.interval_mm[0] if margin.interval_mm else None
    if margin.status != "negative" or margin.min_margin_mm is None or low is None:
        return None
    if not margin_is_positive(low, margin.threshold_mm):
        return None
    return (
        f"the margin reads negative ({margin.min_margin_mm:.2f} mm), but its interval reaches {low:.2f} mm, "
        f"within the {margin.threshold_mm:g} mm rule: the image does not settle the status"
    )


def assess_margin(
    tumour: np.ndarray,
    specimen: np.ndarray,
    grid: Grid,
    threshold_mm: float = POSITIVE_MARGIN_MM,
    member_calls: Sequence[bool] = (),
    face_names: Mapping[str, str] | None = None,
    depth: np.ndarray | None = None,
) -> MarginResult:
    """Margin status and geometry of ``tumour`` inside ``specimen`` on ``grid``.

    Args:
        tumour, specimen: boolean masks on ``grid`` (array order).
        threshold_mm: positive when the minimum margin is at most this.
        member_calls: the ensemble members' calls (:func:`members_positive`), for the share calling it positive.
        face_names: names for the faces (e.g. ``{"+x": "lateral", …}``); LPS names by default.
        depth: a precomputed :func:`~breastseg.masks.depth_below_surface_mm` of ``specimen`` (reused across members).
    """
    names = dict(LPS_FACE_NAMES if face_names is None else face_names)
    spacing = grid.spacing
    depth = depth_below_surface_mm(specimen, spacing) if depth is None else depth
    fraction = float(np.mean(member_calls)) if len(member_calls) else None
    if not tumour.any():
        return MarginResult(
            "negative",
            None,
            threshold_mm,
            per_face_margin_mm={names.get(f, f): None for f in FACES},
            ensemble_positive_fraction=fraction,
            reason="no tumour predicted in the specimen",
        )
    tumour_depth = np.where(tumour, depth, np.inf)
    flat = int(np.argmin(tumour_depth))
    closest = np.array(np.unravel_index(flat, tumour.shape))
    margin = float(tumour_depth.ravel()[flat])

    # the outside voxel the closest tumour voxel faces: search a box around it
    reach = np.ceil((margin + 2 * max(spacing)) / np.asarray(spacing)).astype(int) + 1
    lo = np.maximum(closest - reach, 0)
    hi = np.minimum(closest + reach + 1, tumour.shape)
    window = ~specimen[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    outside = np.argwhere(window) + lo
    if outside.size:
        d = np.linalg.norm((outside - closest) * np.asarray(spacing), axis=1)
        target = outside[int(np.argmin(d))]
    else:  # the specimen fills the image there: the image border is the nearest outside
        target = np.clip(closest, 0, np.asarray(tumour.shape) - 1)
    # faces: the specimen mapped to a unit cube, so the closest face and the per-face margins agree
    surf = np.argwhere(surface_voxels(specimen))
    faces = _box_faces(surf, specimen, spacing, grid)
    face = FACES[int(_box_faces(target[None, :], specimen, spacing, grid)[0])]
    # a tumour voxel j voxels below a surface voxel (itself inside) leaves a gap of j voxels: the centre
    # distance from each surface voxel to the nearest tumour voxel is the face-to-face margin there
    dist = distance_to_mask_mm(tumour, spacing)[tuple(surf.T)]
    per_face: dict[str, float | None] = {}
    for k, f in enumerate(FACES):
        on_face = faces == k
        per_face[names.get(f, f)] = round(float(dist[on_face].min()), MARGIN_DECIMALS) if on_face.any() else None

    status = "positive" if margin_is_positive(margin, threshold_mm) else "negative"
    return MarginResult(
        status=status,
        min_margin_mm=round(margin, MARGIN_DECIMALS),
        threshold_mm=threshold_mm,
        closest_point_mm=[round(float(v), 4) for v in grid.index_to_world(closest)],
        surface_point_mm=[round(float(v), 4) for v in grid.index_to_world(target)],
        closest_face=names.get(face, face),
        per_face_margin_mm=per_face,
        ensemble_positive_fraction=fraction,
    )


def describe_interval(result: Mapping[str, Any]) -> str | None:
    """The margin interval of a result (``result.json``'s keys) in words, e.g. ``"0.84–1.62 mm (tumour drawn at
    probability ≥ 0.3 / ≥ 0.7)"``; ``None`` when the result has none."""
    interval, probabilities = result.get("margin_interval_mm"), result.get("margin_interval_probabilities")
    basis = result.get("margin_interval_basis")
    if not interval or interval[0] is None or not (probabilities or basis):
        return None
    span = interval_span(result) or ""
    if basis or not probabilities:
        return f"{span} ({basis})"
    if interval[1] is None:
        span += f" (no voxel reaches {probabilities[1]:g})"
    return f"{span} (tumour drawn at probability ≥ {probabilities[0]:g} / ≥ {probabilities[1]:g})"


def interval_span(result: Mapping[str, Any]) -> str | None:
    """The margin interval's numbers alone (mm, two decimals), e.g. ``"0.84–1.62 mm"`` or ``"≥ 0.84 mm"`` when
    no upper bound was found; ``None`` without an interval."""
    low, high = result.get("margin_interval_mm") or (None, None)
    if low is None:
        return None
    return f"{float(low):.2f}–{float(high):.2f} mm" if high is not None else f"≥ {float(low):.2f} mm"
