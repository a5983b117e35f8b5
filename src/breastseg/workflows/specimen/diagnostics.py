"""Where a specimen segmentation errs: false positives by depth below the specimen surface and by how the slicing
plane meets the surface.

A tri-planar 2D network sees a voxel near the surface in three slices. A slice whose plane runs parallel to the
surface there (a *tangential* cut: the slicing axis along the surface normal) shows tissue with no surface in
sight — a view training lamellae, cut across the specimen, seldom give. :func:`false_positives_by_obliquity` tells
whether false positives gather where the slicing axis runs along the surface normal, per axis; together with
:func:`false_positives_by_depth` it tests the suspicion that the network over-extends towards the surface because
of such slices, and :func:`false_positives_by_tumour_distance` tells a boundary drawn too wide from false findings
elsewhere. :func:`false_positives_by_tumour_obliquity` asks the same of the tumour's own boundary: a slice that
runs parallel to it just beyond a tumour's end (its cap) shows blurred uptake with no tumour in the plane — a view
lamellae cut through the middle of the tumour never give (``benchmarks/specimen_surface_errors.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: depth bins (mm below the surface) of the false-positive tables
DEPTH_BINS_MM = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, float("inf"))
#: distance bins (mm) from the true tumour: a boundary drawn too wide vs false findings away from the tumour
TUMOUR_DISTANCE_BINS_MM = (0.0, 0.25, 0.5, 1.0, 2.0, float("inf"))
#: bins of |cos| between a slicing axis and the surface normal: 1 = the slice plane is parallel to the surface
OBLIQUITY_BINS = (0.0, 0.5, 0.87, 0.97, 1.0001)


@dataclass(frozen=True)
class BinRate:
    """False positives among the non-tumour tissue voxels of one bin."""

    low: float
    high: float
    voxels: int
    false_positives: int

    @property
    def rate(self) -> float | None:
        return self.false_positives / self.voxels if self.voxels else None


def surface_normals(depth_mm: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Unit vectors ``(3, z, y, x)`` (array axis order) along which the depth below the surface grows: the inward
    surface normal of the nearest surface; zero where the depth is flat."""
    grad = np.asarray(np.gradient(depth_mm.astype(np.float64), *[float(s) for s in spacing]))
    norm = np.linalg.norm(grad, axis=0)
    return np.where(norm > 0, grad / np.maximum(norm, 1e-12), 0.0)


def _binned(values: np.ndarray, errors: np.ndarray, bins: Sequence[float]) -> list[BinRate]:
    index = np.digitize(values, bins[1:-1])
    return [
        BinRate(bins[k], bins[k + 1], int(np.count_nonzero(index == k)), int(np.count_nonzero(errors[index == k])))
        for k in range(len(bins) - 1)
    ]


def false_positives_by_depth(
    predicted: np.ndarray,
    tumour: np.ndarray,
    tissue: np.ndarray,
    depth_mm: np.ndarray,
    bins: Sequence[float] = DEPTH_BINS_MM,
) -> list[BinRate]:
    """False-positive rate of ``predicted`` among non-tumour tissue voxels, per depth bin (mm)."""
    healthy = np.asarray(tissue, bool) & ~np.asarray(tumour, bool)
    return _binned(depth_mm[healthy], np.asarray(predicted, bool)[healthy], bins)


def false_positives_by_obliquity(
    predicted: np.ndarray,
    tumour: np.ndarray,
    tissue: np.ndarray,
    depth_mm: np.ndarray,
    normals: np.ndarray,
    axis: int,
    within_mm: float = 1.0,
    bins: Sequence[float] = OBLIQUITY_BINS,
) -> list[BinRate]:
    """False-positive rate of ``predicted`` among non-tumour tissue voxels within ``within_mm`` of the surface,
    per bin of |cos| between array ``axis`` (the slicing axis) and the surface normal (:func:`surface_normals`)."""
    near = np.asarray(tissue, bool) & ~np.asarray(tumour, bool) & (depth_mm <= within_mm)
    return _binned(np.abs(normals[axis][near]), np.asarray(predicted, bool)[near], bins)


def _distance_from_tumour_mm(tumour: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Face-to-face distance (mm) of every voxel from the nearest tumour voxel (0 inside and next to it)."""
    import edt

    distance = edt.edt(~np.asarray(tumour, bool), anisotropy=tuple(float(s) for s in spacing), black_border=False)
    return np.maximum(distance - min(spacing), 0.0)


def false_positives_by_tumour_obliquity(
    predicted: np.ndarray,
    tumour: np.ndarray,
    tissue: np.ndarray,
    spacing: Sequence[float],
    axis: int,
    within_mm: float = 0.5,
    bins: Sequence[float] = OBLIQUITY_BINS,
) -> list[BinRate]:
    """False-positive rate of ``predicted`` in the ring of non-tumour tissue within ``within_mm`` of the true tumour,
    per bin of |cos| between array ``axis`` (the slicing axis) and the tumour's outward normal (1: the slice plane
    runs parallel to the tumour boundary, as just beyond the tumour's end along that axis)."""
    distance = _distance_from_tumour_mm(tumour, spacing)
    ring = np.asarray(tissue, bool) & ~np.asarray(tumour, bool) & (distance <= within_mm)
    normals = surface_normals(distance, spacing)
    return _binned(np.abs(normals[axis][ring]), np.asarray(predicted, bool)[ring], bins)


def false_positives_by_tumour_distance(
    predicted: np.ndarray,
    tumour: np.ndarray,
    tissue: np.ndarray,
    spacing: Sequence[float],
    bins: Sequence[float] = TUMOUR_DISTANCE_BINS_MM,
) -> list[BinRate]:
    """False-positive rate of ``predicted`` among non-tumour tissue voxels, per bin of distance (mm, voxel centre to
    the nearest true tumour voxel centre): near the tumour, a boundary drawn too wide; far, false findings."""
    healthy = np.asarray(tissue, bool) & ~np.asarray(tumour, bool)
    return _binned(_distance_from_tumour_mm(tumour, spacing)[healthy], np.asarray(predicted, bool)[healthy], bins)
