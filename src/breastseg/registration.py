"""Landmark-based registration (SimpleITK): fit a transform to paired points, warp images and masks with it.

Used by the ultrasound workflow to bring a histology slide's annotation onto the ultrasound image (Yao et al.
2026 register biopsy whole-slide images to the ultrasound of the needle tract). Points are physical ``(x, y[, z])``
in mm in each image's own space (:meth:`breastseg.image.Grid.index_to_world` converts pixel indices).

ITK convention, kept here: the transform maps points of the **fixed** image (the one whose grid the result lives
on: the ultrasound) to the **moving** image (the histology), so ``T(fixed_point) ≈ moving_point`` and
resampling the moving image through ``T`` lands it on the fixed grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk

from breastseg.errors import InputError
from breastseg.image import Grid, Image

TransformKind = Literal["rigid", "similarity", "affine"]
_MIN_POINTS = {"rigid": 2, "similarity": 2, "affine": 3}


@dataclass(eq=False)
class LandmarkRegistration:
    """A fitted landmark transform and how well it fits its own landmarks.

    Attributes:
        transform: SimpleITK transform, fixed → moving physical points.
        residuals_mm: ``|T(fixed_i) − moving_i|`` per landmark pair, mm (fiducial registration error).
        leave_one_out_mm: the same distance for each pair when the transform is fitted without it (an estimate
            of the error at points that are not landmarks, the target registration error); ``None`` when too
            few pairs to leave one out.
    """

    transform: sitk.Transform
    residuals_mm: np.ndarray
    leave_one_out_mm: np.ndarray | None

    @property
    def rms_mm(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_mm**2)))

    def map_points(self, fixed_points: np.ndarray) -> np.ndarray:
        """Fixed-space points ``(n, d)`` mm → moving-space points."""
        return np.array([self.transform.TransformPoint(tuple(map(float, p))) for p in np.atleast_2d(fixed_points)])

    def warp(self, moving: Image, fixed: Grid | Image, order: Literal[0, 1, 3] = 1, fill: float = 0.0) -> Image:
        """``moving`` resampled onto the fixed grid through the transform (order 0 for label masks)."""
        grid = fixed.grid if isinstance(fixed, Image) else fixed
        reference = Image(np.zeros(grid.shape, np.float32), grid.spacing, grid.origin, grid.direction)
        interpolator = {0: sitk.sitkNearestNeighbor, 1: sitk.sitkLinear, 3: sitk.sitkBSpline}[order]
        moving_sitk = moving.to_sitk()
        out = sitk.Resample(
            moving_sitk, reference.to_sitk(), self.transform, interpolator, fill, moving_sitk.GetPixelID()
        )
        result = Image.from_sitk(out, modality=moving.modality, units=moving.units)
        return result.with_array(result.array.astype(moving.array.dtype, copy=False))


def _initial(kind: TransformKind, dim: int) -> sitk.Transform:
    if kind == "affine":
        return sitk.AffineTransform(dim)
    if kind == "similarity":
        return sitk.Similarity2DTransform() if dim == 2 else sitk.Similarity3DTransform()
    return sitk.Euler2DTransform() if dim == 2 else sitk.VersorRigid3DTransform()


def _fit(fixed: np.ndarray, moving: np.ndarray, kind: TransformKind) -> sitk.Transform:
    dim = fixed.shape[1]
    return sitk.LandmarkBasedTransformInitializer(_initial(kind, dim), fixed.ravel().tolist(), moving.ravel().tolist())


def register_landmarks(
    fixed_points: np.ndarray, moving_points: np.ndarray, kind: TransformKind = "affine"
) -> LandmarkRegistration:
    """Least-squares ``kind`` transform with ``T(fixed_i) ≈ moving_i`` (SimpleITK's landmark initializer).

    Args:
        fixed_points, moving_points: ``(n, d)`` physical points, mm, pair ``i`` marking the same structure.

    Raises:
        InputError: different counts, wrong dimension, too few pairs or collinear points for an affine.
    """
    fixed = np.asarray(fixed_points, float)
    moving = np.asarray(moving_points, float)
    if fixed.ndim != 2 or fixed.shape != moving.shape or fixed.shape[1] not in (2, 3):
        raise InputError(
            f"landmarks must be two (n, 2) or (n, 3) arrays of equal shape; got {fixed.shape}, {moving.shape}"
        )
    n, dim = fixed.shape
    need = _MIN_POINTS[kind] + (1 if kind == "affine" and dim == 3 else 0)
    if n < need:
        raise InputError(f"a {kind} transform needs at least {need} landmark pairs; got {n}")
    if kind == "affine":
        centred = fixed - fixed.mean(axis=0)
        if np.linalg.matrix_rank(centred, tol=1e-6 * max(1.0, float(np.abs(centred).max()))) < dim:
            raise InputError("the fixed landmarks are collinear (coplanar in 3D): an affine is not determined")
    transform = _fit(fixed, moving, kind)
    registration = LandmarkRegistration(transform, np.zeros(n), None)
    registration.residuals_mm = np.linalg.norm(registration.map_points(fixed) - moving, axis=1)
    if n > need:
        loo = []
        for i in range(n):
            keep = np.arange(n) != i
            t = _fit(fixed[keep], moving[keep], kind)
            loo.append(float(np.linalg.norm(np.asarray(t.TransformPoint(tuple(fixed[i]))) - moving[i])))
        registration.leave_one_out_mm = np.asarray(loo)
    return registration
