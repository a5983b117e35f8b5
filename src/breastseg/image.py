"""The image model: a NumPy array with its true geometry.

Conventions (the same across the package):

* ``array`` is in ``(z, y, x)`` order for 3D and ``(y, x)`` for 2D.
* ``spacing`` follows the array order, in mm: ``(dz, dy, dx)``.
* ``origin`` is the physical position of the centre of voxel 0 in patient LPS coordinates ``(x, y, z)``,
  in mm, exactly as DICOM (ImagePositionPatient) and ITK report it.
* ``direction`` is the ITK direction matrix, shape ``(ndim, ndim)``: column ``i`` is the unit vector, in LPS
  ``(x, y, z)``, along which ITK index ``i`` grows; ITK index 0 is the array's *last* axis (x).

So the physical point of array index ``(k, j, i)`` is ``origin + direction @ ((i, j, k) * spacing[::-1])``;
:meth:`Grid.index_to_world` does this for you.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import SimpleITK as sitk

from breastseg.errors import InputError

InterpolationOrder = Literal[0, 1, 3]

_INTERPOLATORS = {0: sitk.sitkNearestNeighbor, 1: sitk.sitkLinear, 3: sitk.sitkBSpline}


def _bspline_weights(u: np.ndarray, n: int) -> np.ndarray:
    """``(len(u), n)`` weights of the cubic B-spline at continuous indices ``u`` of an axis of ``n`` coefficients,
    mirrored at the ends as ITK's B-spline interpolator mirrors them; zero rows where ITK's resampler would fill
    (outside ``[-0.5, n - 0.5]``)."""
    f = np.floor(u)
    t = u - f
    w = np.stack([(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], axis=1) / 6.0
    j = f.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    if n == 1:
        j = np.zeros_like(j)
    else:
        period = 2 * n - 2
        j = np.mod(j, period)
        j = np.where(j >= n, period - j, j)
    weights = np.zeros((len(u), n))
    np.add.at(weights, (np.repeat(np.arange(len(u)), 4), j.ravel()), w.ravel())
    weights[~((u >= -0.5) & (u <= n - 0.5))] = 0.0
    return weights


def _bspline_axis_by_axis(array: np.ndarray, src: Grid, dst: Grid, fill: float) -> np.ndarray:
    """Cubic B-spline resampling between two grids of the same orientation, one axis at a time.

    With equal direction matrices each target axis maps onto one source axis by a scale and a shift, so the 3D
    B-spline (64 coefficients per voxel) factorises into one small weight matrix per axis applied in turn to the
    spline coefficients (``scipy.ndimage.spline_filter``, mirror boundary). The values are ITK's
    (``sitk.sitkBSpline``, tested to float rounding) at a fraction of the time: a micro-PET onto a cropped
    micro-CT grid (9.6 M voxels) takes 0.1 s instead of 1–1.6 s on 2 cores. Points outside the source (beyond
    half a voxel) get ``fill``."""
    from scipy import ndimage

    coefficients = ndimage.spline_filter(np.asarray(array, np.float64), order=3, mode="mirror")
    first = src.world_to_index(dst.origin)
    out = coefficients
    inside = np.ones(dst.shape, bool)
    for axis in reversed(range(src.ndim)):
        u = first[axis] + (dst.spacing[axis] / src.spacing[axis]) * np.arange(dst.shape[axis])
        weights = _bspline_weights(u, src.shape[axis])
        out = np.moveaxis(np.tensordot(out, weights, axes=([axis], [1])), -1, axis)
        shape = [1] * src.ndim
        shape[axis] = dst.shape[axis]
        inside &= (weights.any(axis=1)).reshape(shape)
    return np.where(inside, out, fill).astype(np.float32)


def _as_tuple(values: Sequence[float] | np.ndarray, ndim: int, name: str) -> tuple[float, ...]:
    out = tuple(float(v) for v in np.asarray(values, dtype=float).ravel())
    if len(out) != ndim:
        raise InputError(f"{name} has {len(out)} values but the image has {ndim} dimensions")
    return out


def _as_direction(direction: np.ndarray | Sequence[float] | None, ndim: int) -> np.ndarray:
    if direction is None:
        return np.eye(ndim)
    d = np.asarray(direction, dtype=float)
    if d.size != ndim * ndim:
        raise InputError(f"direction has {d.size} values; a {ndim}D image needs {ndim * ndim}")
    d = d.reshape(ndim, ndim)
    if not np.allclose(d.T @ d, np.eye(ndim), atol=1e-4):
        raise InputError(f"direction matrix is not orthonormal: {d.tolist()}")
    return d


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid in physical space, without pixel values.

    Attributes:
        shape: number of voxels per axis, array order ``(z, y, x)``.
        spacing: voxel size per axis in mm, array order.
        origin: centre of voxel 0 in LPS ``(x, y, z)`` mm.
        direction: ITK direction matrix ``(ndim, ndim)`` (columns: ITK index axes x, y, z).
    """

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        ndim = len(self.shape)
        if ndim not in (2, 3):
            raise InputError(f"a grid must be 2D or 3D, got shape {self.shape}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "spacing", _as_tuple(self.spacing, ndim, "spacing"))
        object.__setattr__(self, "origin", _as_tuple(self.origin, ndim, "origin"))
        object.__setattr__(self, "direction", _as_direction(self.direction, ndim))
        if any(s <= 0 or not np.isfinite(s) for s in self.spacing):
            raise InputError(f"spacing must be positive and finite, got {self.spacing} mm")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume (3D) or area (2D) of one voxel, in mm³ (mm²)."""
        return float(np.prod(self.spacing))

    @property
    def physical_size_mm(self) -> tuple[float, ...]:
        """Edge-to-edge extent of the grid per axis, array order, in mm."""
        return tuple(n * s for n, s in zip(self.shape, self.spacing, strict=True))

    def patient_axis(self, lps_axis: int) -> tuple[int, bool]:
        """``(array axis, increasing index points to +LPS)`` of the array axis closest to LPS axis ``lps_axis``
        (0: x, towards the patient's left; 1: y, posterior; 2: z, superior), from the direction matrix."""
        itk_axis = int(np.argmax(np.abs(self.direction[lps_axis, :])))
        return self.ndim - 1 - itk_axis, bool(self.direction[lps_axis, itk_axis] > 0)

    def index_to_world(self, index: np.ndarray | Sequence[float]) -> np.ndarray:
        """Physical LPS ``(x, y, z)`` mm of array indices ``(..., ndim)`` given in array order."""
        idx = np.asarray(index, dtype=float)
        steps = idx[..., ::-1] * np.asarray(self.spacing[::-1])
        return np.asarray(self.origin) + steps @ self.direction.T

    def world_to_index(self, points: np.ndarray | Sequence[float]) -> np.ndarray:
        """Continuous array indices (array order) of LPS ``(x, y, z)`` mm points ``(..., ndim)``."""
        pts = np.asarray(points, dtype=float) - np.asarray(self.origin)
        itk_index = (pts @ self.direction) / np.asarray(self.spacing[::-1])
        return itk_index[..., ::-1]

    def with_spacing(self, spacing: Sequence[float] | float) -> Grid:
        """A grid with new voxel size covering the same physical field of view (voxel edges kept).

        The new shape is the old extent divided by the new spacing, rounded (at least 1 voxel); the
        origin moves so that the outer voxel edges stay where they were.
        """
        new_spacing = np.broadcast_to(np.asarray(spacing, dtype=float), (self.ndim,))
        old_spacing = np.asarray(self.spacing)
        shape = np.maximum(1, np.round(np.asarray(self.shape) * old_spacing / new_spacing)).astype(int)
        # first-voxel-edge stays fixed: centre shifts by half the difference in voxel size
        shift_index = (new_spacing - old_spacing) / 2.0 / old_spacing
        origin = self.index_to_world(shift_index)
        return Grid(tuple(int(s) for s in shape), tuple(new_spacing.tolist()), tuple(origin), self.direction)

    def same_as(self, other: Grid, atol_mm: float = 1e-4) -> bool:
        """True when both grids have the same shape and the same geometry within ``atol_mm``."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=atol_mm)
            and np.allclose(self.origin, other.origin, atol=atol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-6)
        )


@dataclass(frozen=True, eq=False)
class Image:
    """A 2D or 3D image: array plus geometry plus what its values mean.

    Attributes:
        array: pixel values, ``(z, y, x)`` or ``(y, x)``.
        spacing: voxel size in mm, array order.
        origin: LPS ``(x, y, z)`` mm of the centre of voxel 0 (zeros when not given).
        direction: ITK direction matrix (identity when not given).
        modality: DICOM modality code where known: ``"CT"``, ``"PT"``, ``"MR"``, ``"US"``, ``"SEG"``.
        units: what a value means: ``"HU"``, ``"BQML"`` (Bq/ml), ``"CNTS"``, ``"SUVbw"``, ``"SUL"``, ``"label"``.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...] | None = None
    direction: np.ndarray | None = field(default=None, repr=False)
    modality: str | None = None
    units: str | None = None

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim not in (2, 3):
            raise InputError(f"an image must be 2D or 3D, got an array of shape {arr.shape}")
        if 0 in arr.shape:
            raise InputError(f"an image cannot be empty, got an array of shape {arr.shape}")
        object.__setattr__(self, "array", arr)
        grid = Grid(arr.shape, self.spacing, self.origin or (0.0,) * arr.ndim, _as_direction(self.direction, arr.ndim))
        object.__setattr__(self, "spacing", grid.spacing)
        object.__setattr__(self, "origin", grid.origin)
        object.__setattr__(self, "direction", grid.direction)

    # -- geometry -------------------------------------------------------------------------------------
    @property
    def grid(self) -> Grid:
        assert self.origin is not None and self.direction is not None
        return Grid(self.array.shape, self.spacing, self.origin, self.direction)

    @property
    def ndim(self) -> int:
        return int(self.array.ndim)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in ml (cm³); 2D images have no volume (use ``pixel_area_cm2``)."""
        if self.ndim != 3:
            raise InputError(f"a {self.ndim}D image has no voxel volume; use pixel_area_cm2")
        return self.grid.voxel_volume_mm3 / 1000.0

    @property
    def pixel_area_cm2(self) -> float:
        """Area of one pixel of a 2D image in cm²."""
        if self.ndim != 2:
            raise InputError(f"a {self.ndim}D image has no pixel area; use voxel_volume_ml")
        return self.grid.voxel_volume_mm3 / 100.0

    def with_array(self, array: np.ndarray, *, units: str | None = None, modality: str | None = None) -> Image:
        """The same geometry with new values (the shape must match)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise InputError(f"new array shape {array.shape} differs from the image's {self.array.shape}")
        return replace(
            self,
            array=array,
            units=self.units if units is None else units,
            modality=self.modality if modality is None else modality,
        )

    # -- SimpleITK ------------------------------------------------------------------------------------
    def to_sitk(self) -> sitk.Image:
        """A SimpleITK image with exactly this geometry (bool becomes uint8, float16 becomes float32)."""
        arr = self.array
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        elif arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        out = sitk.GetImageFromArray(np.ascontiguousarray(arr))
        out.SetSpacing(self.spacing[::-1])
        assert self.origin is not None and self.direction is not None
        out.SetOrigin(self.origin)
        out.SetDirection(tuple(self.direction.ravel()))
        return out

    @classmethod
    def from_sitk(cls, image: sitk.Image, *, modality: str | None = None, units: str | None = None) -> Image:
        """Wrap a scalar 2D/3D SimpleITK image, keeping its geometry exactly."""
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(
                f"expected a scalar image, got {image.GetNumberOfComponentsPerPixel()} components per pixel"
            )
        return cls(
            sitk.GetArrayFromImage(image),
            spacing=tuple(image.GetSpacing())[::-1],
            origin=tuple(image.GetOrigin()),
            direction=np.asarray(image.GetDirection()),
            modality=modality,
            units=units,
        )

    # -- resampling -----------------------------------------------------------------------------------
    def resample_onto(self, target: Grid | Image, order: InterpolationOrder = 1, fill: float = 0.0) -> Image:
        """Resample onto another grid (e.g. PET onto the CT grid) in physical space.

        Args:
            target: the grid, or an image whose grid is used.
            order: 0 nearest neighbour (labels), 1 linear, 3 cubic B-spline (third-order, as the
                specimen study resamples PET).
            fill: value for points outside this image.

        Returns:
            A new image on ``target``'s grid; labels (order 0) keep their dtype, otherwise float32.
        """
        grid = target.grid if isinstance(target, Image) else target
        if grid.ndim != self.ndim:
            raise InputError(f"cannot resample a {self.ndim}D image onto a {grid.ndim}D grid")
        if order not in _INTERPOLATORS:
            raise InputError(f"interpolation order must be 0, 1 or 3, got {order}")
        if order == 3 and np.allclose(self.grid.direction, grid.direction, atol=1e-6):
            out3 = _bspline_axis_by_axis(self.array, self.grid, grid, fill)
            return Image(out3, grid.spacing, grid.origin, grid.direction, self.modality, self.units)
        src = self.to_sitk()
        f = sitk.ResampleImageFilter()
        f.SetSize([int(s) for s in grid.shape[::-1]])
        f.SetOutputSpacing(grid.spacing[::-1])
        f.SetOutputOrigin(grid.origin)
        f.SetOutputDirection(tuple(grid.direction.ravel()))
        f.SetInterpolator(_INTERPOLATORS[order])
        f.SetDefaultPixelValue(float(fill))
        f.SetOutputPixelType(src.GetPixelID() if order == 0 else sitk.sitkFloat32)
        out = sitk.GetArrayFromImage(f.Execute(src))
        if self.array.dtype == bool and order == 0:
            out = out.astype(bool)
        return Image(out, grid.spacing, grid.origin, grid.direction, self.modality, self.units)

    def resample_to_spacing(
        self, spacing: Sequence[float] | float, order: InterpolationOrder = 1, fill: float = 0.0
    ) -> Image:
        """Resample to a new voxel size (mm, array order, or one number for isotropic), same field of view."""
        return self.resample_onto(self.grid.with_spacing(spacing), order=order, fill=fill)

    # -- cropping and padding -------------------------------------------------------------------------
    def crop(self, bbox: Sequence[slice]) -> Image:
        """Crop to a box of array slices (array order, step 1); the origin moves with the first voxel."""
        if len(bbox) != self.ndim:
            raise InputError(f"crop box has {len(bbox)} axes, image has {self.ndim}")
        norm = [slice(*s.indices(n)[:2]) for s, n in zip(bbox, self.shape, strict=True)]
        if any(s.stop <= s.start for s in norm):
            raise InputError(f"crop box {bbox} is empty for an image of shape {self.shape}")
        start = [s.start for s in norm]
        origin = tuple(self.grid.index_to_world(start))
        return replace(self, array=self.array[tuple(norm)].copy(), origin=origin)

    def pad(self, widths: Sequence[tuple[int, int]] | int, value: float = 0.0) -> Image:
        """Pad with a constant; ``widths`` is ``(before, after)`` voxels per axis (array order) or one int."""
        if isinstance(widths, int):
            widths = [(widths, widths)] * self.ndim
        if len(widths) != self.ndim or any(a < 0 or b < 0 for a, b in widths):
            raise InputError(f"pad widths {widths} do not fit a {self.ndim}D image")
        origin = tuple(self.grid.index_to_world([-a for a, _ in widths]))
        arr = np.pad(self.array, [tuple(w) for w in widths], mode="constant", constant_values=value)
        return replace(self, array=arr, origin=origin)


def odd_kernel(size_mm: float, spacing: Sequence[float]) -> tuple[int, ...]:
    """Voxels per axis of a ``size_mm`` kernel on ``spacing``: the nearest odd count, at least 1."""
    sizes = []
    for s in spacing:
        n = max(1, round(size_mm / s))
        sizes.append(n if n % 2 == 1 else n + 1)
    return tuple(sizes)


def median_filter(image: Image, kernel_mm: float) -> Image:
    """``image`` median-filtered with a ``kernel_mm`` isotropic box (:func:`odd_kernel` voxels per axis; a kernel
    below a voxel leaves it as it is), the border extended by its nearest voxel. SimpleITK's multi-threaded median:
    the same values as SciPy's ``median_filter(mode="nearest")``, about twice as fast on two cores."""
    size = odd_kernel(kernel_mm, image.spacing)
    median = sitk.MedianImageFilter()
    median.SetRadius([int(n // 2) for n in size[::-1]])  # ITK order: x, y, z
    filtered = median.Execute(sitk.GetImageFromArray(np.ascontiguousarray(image.array, dtype=np.float32)))
    return image.with_array(sitk.GetArrayFromImage(filtered))


def bounding_box(mask: np.ndarray, margin: int | Sequence[int] = 0) -> tuple[slice, ...] | None:
    """Smallest box of array slices holding every non-zero voxel, grown by ``margin`` voxels per side.

    Returns ``None`` for an empty mask (there is nothing to crop to). The box is clipped to the array.
    """
    mask = np.asarray(mask)
    if not mask.any():
        return None
    margins = np.broadcast_to(np.asarray(margin, dtype=int), (mask.ndim,))
    # two passes over the volume: the first axis's profile, and the projection of the rest onto one plane
    profiles = [mask.reshape(mask.shape[0], -1).any(axis=1)]
    plane = np.asarray(mask.any(axis=0))
    for axis in range(plane.ndim):
        other = [a for a in range(plane.ndim) if a != axis]
        profiles.append(np.any(plane, axis=tuple(other)) if other else plane)
    out = []
    for axis, profile in enumerate(profiles):
        hits = np.flatnonzero(profile)
        lo = max(0, int(hits[0]) - int(margins[axis]))
        hi = min(mask.shape[axis], int(hits[-1]) + 1 + int(margins[axis]))
        out.append(slice(lo, hi))
    return tuple(out)
