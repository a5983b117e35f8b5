"""Registration (SimpleITK): landmark-based (paired points) and intensity-based rigid (mutual information);
warp images and masks with the result.

Landmarks: the ultrasound workflow brings a histology slide's annotation onto the ultrasound image (Yao et al.
2026 register biopsy whole-slide images to the ultrasound of the needle tract). Points are physical
``(x, y[, z])`` in mm in each image's own space (:meth:`breastseg.image.Grid.index_to_world` converts indices).
Rigid mutual information: the PET/CT workflow brings the baseline PET and lesion mask onto the follow-up PET
(Moreau et al. 2022: SimpleITK, rigid, mutual information).

ITK convention, kept here: the transform maps points of the **fixed** image (the one whose grid the result lives
on: the ultrasound) to the **moving** image (the histology), so ``T(fixed_point) ≈ moving_point`` and
resampling the moving image through ``T`` lands it on the fixed grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import SimpleITK as sitk

from breastseg.errors import InputError
from breastseg.image import Grid, Image

TransformKind = Literal["rigid", "similarity", "affine"]
_MIN_POINTS = {"rigid": 2, "similarity": 2, "affine": 3}


@dataclass(eq=False)
class Registration:
    """A transform, fixed → moving physical points (SimpleITK), and the warp it gives."""

    transform: sitk.Transform

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


@dataclass(eq=False)
class LandmarkRegistration(Registration):
    """A fitted landmark transform and how well it fits its own landmarks.

    Attributes:
        residuals_mm: ``|T(fixed_i) − moving_i|`` per landmark pair, mm (fiducial registration error).
        leave_one_out_mm: the same distance for each pair when the transform is fitted without it (an estimate
            of the error at points that are not landmarks, the target registration error); ``None`` when too
            few pairs to leave one out.
    """

    residuals_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    leave_one_out_mm: np.ndarray | None = None

    @property
    def rms_mm(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_mm**2)))


@dataclass(eq=False)
class IntensityRegistration(Registration):
    """An intensity-based registration: the final metric value (Mattes mutual information, negated: lower is
    better), the optimiser's iterations at the finest level, and why it stopped."""

    metric_value: float = float("nan")
    iterations: int = 0
    stop_condition: str = ""


def _sampling_seed(seed: int) -> int:
    if seed < 1:
        raise InputError(f"registration seed must be ≥ 1 (SimpleITK takes 0 as the wall clock), got {seed}")
    return int(seed)


def register_rigid(
    fixed: Image,
    moving: Image,
    *,
    bins: int = 50,
    sampling: float = 0.25,
    shrink: tuple[int, ...] = (4, 2, 1),
    smoothing_voxels: tuple[float, ...] = (2.0, 1.0, 0.0),
    iterations: int = 200,
    seed: int = 1,
) -> IntensityRegistration:
    """Rigid (rotation + translation) registration of ``moving`` onto ``fixed`` by Mattes mutual information.

    Multi-resolution (``shrink`` / ``smoothing_voxels`` per level), started from the images' geometric
    centres, regular-step gradient descent with scales from physical shifts; random metric sampling of
    ``sampling`` of the voxels with a fixed ``seed`` (same inputs, same result; ``seed`` must be ≥ 1 — SimpleITK
    reads 0 as "seed from the wall clock", which made earlier runs differ). Works across scans and
    modalities (mutual information does not need equal intensities). The returned transform maps fixed
    points to moving points, so :meth:`Registration.warp` brings ``moving`` (and its masks, ``order=0``) onto
    ``fixed``'s grid.
    """
    if fixed.ndim != moving.ndim:
        raise InputError(f"cannot register a {moving.ndim}D image onto a {fixed.ndim}D one")
    if len(shrink) != len(smoothing_voxels):
        raise InputError("shrink and smoothing_voxels need one value per resolution level")
    f = sitk.Cast(fixed.to_sitk(), sitk.sitkFloat32)
    m = sitk.Cast(moving.to_sitk(), sitk.sitkFloat32)
    rigid = sitk.Euler3DTransform() if fixed.ndim == 3 else sitk.Euler2DTransform()
    initial = sitk.CenteredTransformInitializer(f, m, rigid, sitk.CenteredTransformInitializerFilter.GEOMETRY)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling, _sampling_seed(seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-4, numberOfIterations=iterations, relaxationFactor=0.6
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(shrink))
    method.SetSmoothingSigmasPerLevel(list(smoothing_voxels))
    method.SetInitialTransform(initial, inPlace=False)
    try:
        transform = method.Execute(f, m)
    except RuntimeError as exc:  # ITK: e.g. too few samples in the overlap
        raise InputError(f"rigid registration failed: {exc}") from exc
    stop = method.GetOptimizerStopConditionDescription()
    return IntensityRegistration(transform, method.GetMetricValue(), method.GetOptimizerIteration(), stop)


def register_bspline(
    fixed: Image,
    moving: Image,
    *,
    mesh_spacing_mm: float = 30.0,
    bins: int = 32,
    sampling: float = 0.2,
    shrink: tuple[int, ...] = (2, 1),
    smoothing_voxels: tuple[float, ...] = (1.0, 0.0),
    iterations: int = 100,
    rigid_first: bool = True,
    seed: int = 1,
) -> IntensityRegistration:
    """Deformable registration of ``moving`` onto ``fixed``: a cubic B-spline free-form deformation (Rueckert et
    al. 1999, the breast-MRI study's reference 33) with control points every ``mesh_spacing_mm``, Mattes mutual
    information, L-BFGS-B, multi-resolution; after a rigid start (:func:`register_rigid`) when ``rigid_first``.

    The returned transform (rigid then B-spline, composite) maps fixed points to moving points, like
    :func:`register_rigid`'s; deterministic for a ``seed``.
    """
    if fixed.ndim != moving.ndim:
        raise InputError(f"cannot register a {moving.ndim}D image onto a {fixed.ndim}D one")
    f = sitk.Cast(fixed.to_sitk(), sitk.sitkFloat32)
    m = sitk.Cast(moving.to_sitk(), sitk.sitkFloat32)
    start = register_rigid(fixed, moving, seed=seed).transform if rigid_first else None
    extent = np.asarray(fixed.grid.physical_size_mm)[::-1]  # SimpleITK order (x, y, z)
    mesh = [max(1, round(float(e) / mesh_spacing_mm)) for e in extent]
    bspline = sitk.BSplineTransformInitializer(f, mesh, order=3)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling, _sampling_seed(seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations)
    method.SetShrinkFactorsPerLevel(list(shrink))
    method.SetSmoothingSigmasPerLevel(list(smoothing_voxels))
    if start is not None:
        method.SetMovingInitialTransform(start)
    method.SetInitialTransform(bspline, inPlace=True)
    try:
        method.Execute(f, m)
    except RuntimeError as exc:  # ITK: e.g. too few samples in the overlap
        raise InputError(f"B-spline registration failed: {exc}") from exc
    transform = sitk.CompositeTransform(fixed.ndim)
    if start is not None:
        transform.AddTransform(start)
    transform.AddTransform(bspline)
    stop = method.GetOptimizerStopConditionDescription()
    return IntensityRegistration(transform, method.GetMetricValue(), method.GetOptimizerIteration(), stop)


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
