"""Specimen micro-PET-CT preprocessing, step by step in the study's order (Maris et al. 2025, Methods).

1. PET → SUL (lean-body-mass SUV, Janmahasatian), decay-corrected from the DICOM times (:func:`pet_to_sul`);
2. PET median filter with a 2 mm isotropic kernel (:func:`median_filter_pet`);
3. PET resampled onto the CT grid with third-order interpolation (:func:`resample_pet_to_ct`);
4. specimen container / bed removed from the CT (:func:`remove_container`);
5. Otsu threshold on the CT → tissue mask, largest connected component only (:func:`tissue_mask`);
6. background removed (:func:`remove_background`) and 7. the pair cropped to the tissue (:func:`crop_to_tissue`).

Step 3 is computed where it is needed only: the PET is resampled onto the tissue's cropped CT grid, after steps 4–5
(which read the CT alone), rather than onto the whole field of view and cropped afterwards. Interpolation is
point by point, so the values are the same (tested against the study's order); it halves the most expensive
step on a specimen that fills half its field of view.

Every step is a plain function of images (arrays with geometry) and returns new images; :func:`preprocess`
runs them all and records the time of each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import edt
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from breastseg.errors import InputError
from breastseg.image import Image, bounding_box, median_filter
from breastseg.io.dicom_meta import PetInfo
from breastseg.machine import usable_cores
from breastseg.masks import fill_holes, label_components, largest_component
from breastseg.sanity import NotAssessable, check_hu, check_pet_values, check_suv_range, check_uptake
from breastseg.suv import to_suv

#: air in HU, the value the background is set to
AIR_HU = -1000.0


class PetUnits(StrEnum):
    """What a PET's values are (``--pet-units``): Bq/ml, SUVbw, or SUL (lean body mass)."""

    BQML = "BQML"
    SUVBW = "SUVbw"
    SUL = "SUL"


@dataclass(frozen=True)
class PreprocessConfig:
    """Parameters of specimen preprocessing (defaults: the study's).

    Attributes:
        median_kernel_mm: PET median filter size (isotropic), mm.
        working_spacing_mm: resample CT (linear) and PET (third order) to this isotropic spacing instead of the
            CT's own, for speed (``None``: the CT grid, as the study).
        container_thickness_mm: structures of the CT foreground thinner than this (a bed plate, a container
            wall, a wire outside the tissue) are candidates for removal …
        container_min_extent_mm: … if they extend at least this far (tissue crumbs stay).
        crop_margin_mm: margin kept around the tissue when cropping, mm.
    """

    median_kernel_mm: float = 2.0
    working_spacing_mm: float | None = None
    container_thickness_mm: float = 1.5
    container_min_extent_mm: float = 10.0
    crop_margin_mm: float = 0.5


@dataclass(eq=False)
class SpecimenPair:
    """Preprocessed CT (HU) and PET (SUL) on one grid, the tissue mask, and what was done to get there.

    Attributes:
        ct, pet: cropped images on the working grid; outside tissue CT is air and PET is 0.
        tissue: the specimen (tissue) mask on the same grid.
        full_grid_ct: the CT before cropping (working grid), for writing masks back on the full grid.
        crop: the crop box (array slices) of ``ct`` within ``full_grid_ct``.
        container: voxels removed as container / bed / wire outside tissue (full working grid).
        otsu_hu: the Otsu threshold that separated tissue from air.
        timings_s: seconds per step.
        warnings: what the read-out must say alongside it (tissue cut by the CT's field of view, tissue the PET
            does not cover); written into result.json and the report.
    """

    ct: Image
    pet: Image
    tissue: np.ndarray
    full_grid_ct: Image
    crop: tuple[slice, ...]
    container: np.ndarray
    otsu_hu: float
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------------
def check_ct(ct: Image, source: str = "CT") -> None:
    """CT must be 3D and in HU (air near −1000, not raw 0…4095 detector values); :func:`breastseg.sanity.check_hu`."""
    if ct.ndim != 3:
        raise InputError(f"{source}: the specimen CT must be 3D, got shape {ct.shape}")
    check_hu(ct, source)


def check_pet(pet: Image, ct: Image, source: str = "PET") -> None:
    """PET must be 3D, finite, not constant, mostly non-negative (:func:`breastseg.sanity.check_pet_values`), and
    cover the CT's field of view (co-registered pair)."""
    if pet.ndim != 3:
        raise InputError(f"{source}: the specimen PET must be 3D, got shape {pet.shape}")
    check_pet_values(pet, source)
    ct_lo, ct_hi = _extent(ct)
    pet_lo, pet_hi = _extent(pet)
    overlap = np.clip(np.minimum(ct_hi, pet_hi) - np.maximum(ct_lo, pet_lo), 0, None)
    ct_size = ct_hi - ct_lo
    fraction = float(np.prod(overlap) / np.prod(ct_size)) if np.all(ct_size > 0) else 0.0
    if fraction < 0.5:
        raise InputError(
            f"{source}: PET and CT fields of view overlap by {100 * fraction:.0f} % of the CT; they must be "
            "co-registered (same frame of reference, same physical region)"
        )


#: above this fraction of the specimen tissue outside the PET's field of view, the PET cannot show a tumour there:
#: not assessable; below it, a warning
MAX_TISSUE_WITHOUT_PET = 0.05
_EDGE_NAMES = (
    ("first slice", "last slice"),
    ("first row", "last row"),
    ("first column", "last column"),
)


#: tissue crossing a face of the CT's field of view over less than this (mm²) is a wire or a thread, not the
#: specimen cut by the image
MIN_CUT_AREA_MM2 = 4.0


def edges_touched(mask: np.ndarray, spacing: tuple[float, ...] | None = None, min_area_mm2: float = 0.0) -> list[str]:
    """The faces of the array (``"first slice"``, ``"last column"`` …) that ``mask`` reaches over at least
    ``min_area_mm2`` (with ``spacing``, mm; any voxel without)."""
    touched = []
    for axis in range(mask.ndim):
        pixel_mm2 = float(np.prod([s for k, s in enumerate(spacing) if k != axis])) if spacing else 1.0
        for end, name in zip((0, mask.shape[axis] - 1), _EDGE_NAMES[axis], strict=True):
            voxels = int(np.count_nonzero(np.take(mask, end, axis=axis)))
            if voxels and voxels * pixel_mm2 >= min_area_mm2:
                touched.append(name)
    return touched


def tissue_outside_pet(tissue: np.ndarray, ct: Image, pet: Image, stride: int = 3) -> float:
    """Fraction of the tissue (on ``ct``'s grid) whose voxel centres lie outside the PET's field of view,
    estimated on every ``stride``-th voxel per axis."""
    sample = np.argwhere(tissue[tuple(slice(None, None, stride) for _ in tissue.shape)]) * stride
    if not len(sample):
        return 0.0
    index = pet.grid.world_to_index(ct.grid.index_to_world(sample.astype(float)))
    outside = np.any((index < -0.5) | (index > np.asarray(pet.shape) - 0.5), axis=1)
    return float(outside.mean())


def _extent(img: Image) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in img.shape], indexing="ij")).reshape(3, -1).T
    world = img.grid.index_to_world(corners)
    return world.min(axis=0), world.max(axis=0)


# ---------------------------------------------------------------------------------------------------
# the steps
# ---------------------------------------------------------------------------------------------------
def pet_to_sul(pet: Image, info: PetInfo | None, units: PetUnits | None = None) -> Image:
    """Step 1: PET → SUL (Janmahasatian lean body mass), decay-corrected as the QIBA pseudo-code.

    Args:
        pet: the PET image; its ``units`` (or ``units``) say what the values are.
        info: DICOM PET metadata (or :func:`breastseg.suv.pet_info_from_values`); needed unless the image is
            already in SUL.
        units: overrides ``pet.units`` (``"BQML"``, ``"SUVbw"``, ``"SUL"``) for formats that do not store it.
    """
    if units is not None:
        pet = pet.with_array(pet.array, units=units)
    if pet.units == "SUL":
        return pet
    if pet.units is None:
        raise InputError(
            "PET units are unknown (NIfTI/NRRD store none): say --pet-units BQML|SUVbw|SUL, and for BQML give "
            "the patient and injection data (--pet-info)"
        )
    if info is None:
        raise InputError(
            f"PET in {pet.units} needs patient weight, height, sex, injected dose and times to become SUL: "
            "read it from DICOM, or give --pet-info (JSON), or --pet-units SUL for a PET already in SUL"
        )
    return to_suv(pet, info, kind="lbm")


def median_filter_pet(pet: Image, kernel_mm: float = 2.0) -> Image:
    """Step 2: median filter with a ``kernel_mm`` isotropic kernel (:func:`breastseg.image.median_filter`: odd
    voxel count per axis, ≥ 1, the border extended by its nearest voxel)."""
    return median_filter(pet, kernel_mm)


def resample_pet_to_ct(pet: Image, ct: Image) -> Image:
    """Step 3: PET onto the CT grid with third-order (cubic B-spline) interpolation; overshoot below 0 clipped."""
    out = pet.resample_onto(ct, order=3, fill=0.0)
    return out.with_array(np.clip(out.array, 0.0, None))


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of ``values`` (HU clipped to [−1000, 1000] so metal does not stretch the histogram)."""
    v = np.clip(np.asarray(values, dtype=np.float32), AIR_HU, 1000.0)
    if v.size == 0 or float(v.min()) == float(v.max()):
        raise InputError("cannot compute an Otsu threshold on constant values")
    return float(threshold_otsu(v, nbins=512))


def remove_container(ct: Image, thickness_mm: float = 1.5, min_extent_mm: float = 10.0) -> tuple[Image, np.ndarray]:
    """Step 4: remove the specimen bed / container (and a wire's part outside the tissue) from the CT.

    The CT foreground (Otsu) is opened with a ball of diameter ``thickness_mm`` (via distance transforms);
    what the opening removes splits into connected pieces, and pieces that extend at least
    ``min_extent_mm`` are foreign thin structures: a bed plate, a container wall, a hook wire sticking out.
    Their voxels become air. Tissue crumbs the opening shaves off the surface are short and stay.

    Returns:
        The CT with those voxels set to air, and their mask.
    """
    fg = ct.array > otsu_threshold(ct.array)
    radius = thickness_mm / 2.0
    spacing = ct.spacing
    threads = usable_cores()
    inside = edt.edt(np.ascontiguousarray(fg, dtype=np.uint8), anisotropy=spacing, black_border=True, parallel=threads)
    eroded = inside > radius
    outside = edt.edt(
        np.ascontiguousarray(~eroded, dtype=np.uint8), anisotropy=spacing, black_border=False, parallel=threads
    )
    opened = outside <= radius
    thin = fg & ~opened
    labels, n = label_components(thin, 26 if ct.ndim == 3 else 8)
    container = np.zeros(ct.shape, dtype=bool)
    if n:
        boxes = ndimage.find_objects(labels)
        keep = [
            i + 1
            for i, box in enumerate(boxes)
            if box is not None
            and np.linalg.norm([(b.stop - b.start) * s for b, s in zip(box, spacing, strict=True)]) >= min_extent_mm
        ]
        if keep:
            container = np.isin(labels, keep)
    return ct.with_array(np.where(container, AIR_HU, ct.array).astype(np.float32)), container


def tissue_mask(ct: Image) -> tuple[np.ndarray, float]:
    """Step 5: Otsu threshold on the CT, largest connected component, internal holes filled.

    Returns:
        The tissue mask and the Otsu threshold (HU).

    Raises:
        InputError: nothing above the threshold (no tissue in the image).
    """
    if float(ct.array.max()) <= AIR_HU + 50.0:
        raise InputError(f"no tissue found in the CT (nothing above {AIR_HU + 50:.0f} HU)")
    t = otsu_threshold(ct.array)
    fg = ct.array > t
    if not fg.any():
        raise InputError(f"no tissue found in the CT (nothing above the Otsu threshold {t:.0f} HU)")
    return fill_holes(largest_component(fg, connectivity=6 if ct.ndim == 3 else 4)), t


def _air_outside(ct: Image, tissue: np.ndarray) -> Image:
    return ct.with_array(np.where(tissue, ct.array, AIR_HU).astype(np.float32))


def remove_background(ct: Image, pet: Image, tissue: np.ndarray) -> tuple[Image, Image]:
    """Step 6: outside the tissue, CT becomes air and PET 0 (pixels outside tissue are benign)."""
    return _air_outside(ct, tissue), pet.with_array(np.where(tissue, pet.array, 0.0).astype(np.float32))


def tissue_box(tissue: np.ndarray, spacing: Sequence[float], margin_mm: float = 0.5) -> tuple[slice, ...]:
    """The tissue's bounding box plus ``margin_mm`` (array slices)."""
    box = bounding_box(tissue, margin=[int(np.ceil(margin_mm / s)) for s in spacing])
    if box is None:
        raise InputError("the tissue mask is empty; nothing to crop to")
    return box


def crop_to_tissue(
    ct: Image, pet: Image, tissue: np.ndarray, margin_mm: float = 0.5, box: tuple[slice, ...] | None = None
) -> tuple[Image, Image, np.ndarray, tuple[slice, ...]]:
    """Step 7: crop CT, PET and tissue to the tissue's bounding box plus ``margin_mm`` (:func:`tissue_box`).

    A PET already on the cropped grid (the grid of ``ct.crop(box)``, as :func:`preprocess` resamples it) is kept as
    it is; background removal is applied to it here."""
    box = box if box is not None else tissue_box(tissue, ct.spacing, margin_mm)
    ct_c, tissue_c = ct.crop(box), tissue[box]
    pet_c = pet if pet.grid.same_as(ct_c.grid) else pet.crop(box)
    return ct_c, pet_c.with_array(np.where(tissue_c, pet_c.array, 0.0).astype(np.float32)), tissue_c, box


# ---------------------------------------------------------------------------------------------------
# all steps
# ---------------------------------------------------------------------------------------------------
T = TypeVar("T")


def _timed(timings: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    out = fn()
    timings[name] = round(time.perf_counter() - t0, 4)
    return out


def preprocess(
    ct: Image,
    pet: Image,
    pet_info: PetInfo | None = None,
    pet_units: PetUnits | None = None,
    config: PreprocessConfig | None = None,
    progress: Callable[[str], None] | None = None,
    sources: tuple[str, str] = ("CT", "PET"),
) -> SpecimenPair:
    """Run every preprocessing step in the study's order and time each.

    Args:
        ct: micro-CT in HU.
        pet: micro-PET (Bq/ml, SUVbw or SUL) co-registered with the CT.
        pet_info: SUV metadata (from DICOM, or given by hand).
        pet_units: the PET's units when the file does not say.
        progress: called with each step's name before it runs.
        sources: how messages name the CT and the PET (their files).

    Raises:
        InputError: a CT not in HU, a PET that is not finite, constant, negative, of implausible SUL or not
            over the CT (:mod:`breastseg.sanity`); :class:`~breastseg.sanity.NotAssessable` when the PET holds no
            signal in the specimen tissue.
    """
    cfg = config or PreprocessConfig()
    say = progress or (lambda _name: None)
    timings: dict[str, float] = {}
    ct_source, pet_source = sources
    check_ct(ct, ct_source)
    check_pet(pet, ct, pet_source)
    say("PET to SUL")
    sul = _timed(timings, "pet_to_sul", lambda: pet_to_sul(pet, pet_info, pet_units))
    check_suv_range(sul, pet_source, "SUL")
    say("PET median filter")
    sul = _timed(timings, "median_filter", lambda: median_filter_pet(sul, cfg.median_kernel_mm))
    if cfg.working_spacing_mm:
        say("CT to working spacing")
        spacing = cfg.working_spacing_mm
        ct = _timed(timings, "ct_to_working_grid", lambda: ct.resample_to_spacing(spacing, order=1, fill=AIR_HU))
    say("container removal")
    ct_clean, container = _timed(
        timings,
        "remove_container",
        lambda: remove_container(ct, cfg.container_thickness_mm, cfg.container_min_extent_mm),
    )
    say("tissue mask")
    tissue, otsu = _timed(timings, "tissue_mask", lambda: tissue_mask(ct_clean))
    warnings = []
    if cut := edges_touched(tissue, ct.spacing, MIN_CUT_AREA_MM2):
        warnings.append(
            f"the specimen reaches the edge of the CT's field of view ({', '.join(cut)}): the image edge stands in "
            "for its surface there, so a margin measured to that face is not a real one"
        )
    uncovered = tissue_outside_pet(tissue, ct, pet)
    if uncovered > MAX_TISSUE_WITHOUT_PET:
        raise NotAssessable(
            "pet-coverage",
            f"{pet_source}: {100 * uncovered:.0f} % of the specimen lies outside the PET's field of view; the PET "
            "cannot show a tumour there. Acquire or reconstruct the PET over the whole specimen",
        )
    if uncovered > 0:
        warnings.append(f"{100 * uncovered:.1f} % of the specimen lies outside the PET's field of view")
    box = tissue_box(tissue, ct.spacing, cfg.crop_margin_mm)
    say("PET onto the CT grid")
    sul_c = _timed(timings, "resample_pet", lambda: resample_pet_to_ct(sul, ct_clean.crop(box)))
    say("background removal")
    ct_bg = _timed(timings, "remove_background", lambda: _air_outside(ct_clean, tissue))
    say("crop to tissue")
    ct_c, pet_c, tissue_c, box = _timed(
        timings, "crop", lambda: crop_to_tissue(ct_bg, sul_c, tissue, cfg.crop_margin_mm, box)
    )
    check_uptake(pet_c.array[tissue_c], pet_source, "specimen tissue")
    return SpecimenPair(ct_c, pet_c, tissue_c, ct_bg, box, container, otsu, timings, warnings)
