"""PET lesion biomarkers from a lesion mask: SULpeak, SUVmax, SUVmean, MTV, TLG, lesion count, PET Bone and
Liver Indices (Moreau et al. 2022, the EPICUREseinmeta study; PERCIST 1.0; IBSI).

Arrays are ``(z, y, x)`` with ``spacing`` ``(dz, dy, dx)`` in mm. ``suv`` is SUVbw (g/ml); ``sul`` is SUV
normalised to lean body mass (Janmahasatian; :func:`breastseg.suv.to_suv` with ``kind="lbm"``). Volumes are in
ml, TLG in SUVbw·ml.

**SULpeak.** The mean SUL in a sphere, computed exactly as a spherical kernel on the true anisotropic voxel grid:
each voxel weighs the fraction of it inside the sphere (voxels cut by the surface are integrated numerically,
:func:`sphere_kernel`), voxels outside the lesion count (the sphere is a neighbourhood of the image, not of the
mask), and near the image border the mean is taken over the part of the sphere inside the image. It is evaluated
only at the voxels that need it — a sparse convolution, one vectorised pass per kernel tap, so a whole-body PET
takes milliseconds to a fraction of a second. Definitions (:data:`PEAK_DEFINITIONS`):

* ``study`` (default; the study's and PERCIST's): a 1.2 cm-diameter sphere, maximised over sphere centres at
  every segmented voxel — "not necessarily centred on the hottest voxel".
* ``ibsi-global``: IBSI's 1 cm³ sphere (diameter 12.41 mm), maximised over centres at every ROI voxel.
* ``ibsi-local``: IBSI's 1 cm³ sphere centred on the ROI's hottest voxel (the highest such mean when several
  voxels share the maximum).

**Lesions** are 26-connected components. **TLG** = Σ over lesions of MTV × SUVmean (the study's definition;
equal to the sum of SUV × voxel volume over the mask). **PET Bone Index** = volume of bone lesions / bone volume,
**PET Liver Index** likewise for the liver; a lesion belongs to bone (liver) when at least half of its voxels lie
in the bone (liver) mask — a lytic lesion outgrowing the bone outline stays a bone lesion, and its whole volume
counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.image import bounding_box
from breastseg.masks import label_components


class PeakDefinition(StrEnum):
    """How SULpeak is measured (``--peak``): the study's 1.2 cm sphere, or IBSI's 1 cm³ global or local peak."""

    STUDY = "study"
    IBSI_GLOBAL = "ibsi-global"
    IBSI_LOCAL = "ibsi-local"


#: 1 cm³ = 4/3 π r³ → diameter 2 × (3 / 4π)^(1/3) cm
IBSI_PEAK_DIAMETER_MM = 20.0 * (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
PEAK_DEFINITIONS: dict[str, tuple[float, str, str]] = {
    "study": (12.0, "global", "mean SUL in a 1.2 cm-diameter sphere, maximised over centres at segmented voxels"),
    "ibsi-global": (
        IBSI_PEAK_DIAMETER_MM,
        "global",
        "IBSI global intensity peak: mean in a 1 cm³ sphere, maximised over centres at ROI voxels",
    ),
    "ibsi-local": (
        IBSI_PEAK_DIAMETER_MM,
        "local",
        "IBSI local intensity peak: mean in a 1 cm³ sphere centred on the ROI's hottest voxel",
    ),
}


def _spacing3(spacing: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(s) for s in spacing)
    if len(values) != 3 or min(values) <= 0:
        raise InputError(f"spacing must be three positive mm values (dz, dy, dx), got {spacing!r}")
    return values[0], values[1], values[2]


@lru_cache(maxsize=16)
def sphere_kernel(spacing: tuple[float, float, float], diameter_mm: float, samples: int = 16) -> np.ndarray:
    """Weights ``(2a+1, 2b+1, 2c+1)`` of a sphere of ``diameter_mm`` centred on the middle voxel of a grid with
    ``spacing`` ``(dz, dy, dx)`` mm: each voxel's fraction inside the sphere. Voxels wholly inside weigh 1, wholly
    outside 0; those the surface cuts are integrated on ``samples³`` sub-voxel points (error < 0.1 % of the
    sphere's volume at PET voxel sizes). ``kernel.sum() × voxel volume`` ≈ the sphere's volume."""
    r = diameter_mm / 2.0
    d = np.asarray(spacing, float)
    half = np.ceil(r / d + 0.5).astype(int)
    axes = [np.arange(-h, h + 1) * s for h, s in zip(half, d, strict=True)]
    cz, cy, cx = np.meshgrid(*axes, indexing="ij")
    centres = np.stack([cz, cy, cx], axis=-1)
    nearest = np.sqrt((np.maximum(np.abs(centres) - d / 2, 0.0) ** 2).sum(-1))
    farthest = np.sqrt(((np.abs(centres) + d / 2) ** 2).sum(-1))
    weights = (farthest <= r).astype(np.float64)
    cut = (nearest < r) & (farthest > r)
    if cut.any():
        offsets = (np.arange(samples) + 0.5) / samples - 0.5  # sub-voxel sample positions, in voxels
        sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3) * d
        points = centres[cut][:, None, :] + sub[None, :, :]
        weights[cut] = ((points**2).sum(-1) <= r * r).mean(axis=1)
    return weights


def sphere_means(
    values: np.ndarray, spacing: Sequence[float], diameter_mm: float, centres: np.ndarray | None = None
) -> np.ndarray:
    """Mean of ``values`` in a sphere of ``diameter_mm`` centred at each voxel of ``centres`` (a boolean mask of
    the image's shape; default every voxel), with partial-voxel weights; outside the image nothing is counted
    (the mean is over the sphere's part inside the image). Returns the means of the centre voxels in C order.

    One vectorised gather per kernel tap over the centre voxels only — no copy or padding of the image."""
    values = np.asarray(values)
    if values.ndim != 3:
        raise InputError(f"sphere means need a 3D image, got shape {values.shape}")
    kernel = sphere_kernel(_spacing3(spacing), float(diameter_mm))
    half = np.array(kernel.shape) // 2
    shape = np.array(values.shape)
    where = np.ones(values.shape, bool) if centres is None else np.asarray(centres, bool)
    coords = np.argwhere(where)
    strides = np.array([values.shape[1] * values.shape[2], values.shape[2], 1])
    flat_values = values.ravel()
    flat = coords @ strides
    interior = bool(np.all(coords >= half) and np.all(coords < shape - half))
    total = np.zeros(len(coords))
    weight = np.zeros(len(coords))
    for tap in np.argwhere(kernel > 0):
        w = float(kernel[tuple(tap)])
        offset = tap - half
        if interior:  # every sphere lies inside the image: no bounds to check
            total += w * flat_values[flat + int(offset @ strides)]
            weight += w
            continue
        moved = coords + offset
        ok = np.all((moved >= 0) & (moved < shape), axis=1)
        total[ok] += w * flat_values[moved[ok] @ strides]
        weight[ok] += w
    return total / weight


@dataclass(frozen=True)
class Peak:
    """A peak value (SUL or the image's unit) and where: the centre voxel ``(z, y, x)``."""

    value: float
    voxel: tuple[int, int, int]
    definition: str
    diameter_mm: float


def peak(
    image: np.ndarray,
    roi: np.ndarray,
    spacing: Sequence[float],
    definition: PeakDefinition | str = PeakDefinition.STUDY,
) -> Peak | None:
    """The peak of ``image`` in ``roi`` by ``definition`` (see the module docstring); ``None`` for an empty ROI."""
    if definition not in PEAK_DEFINITIONS:
        raise InputError(f"peak definition {definition!r}: use one of {', '.join(PEAK_DEFINITIONS)}")
    roi = np.asarray(roi, bool)
    if roi.shape != np.shape(image):
        raise InputError(f"mask shape {roi.shape} differs from the image's {np.shape(image)}")
    if not roi.any():
        return None
    diameter, scope, _ = PEAK_DEFINITIONS[definition]
    # every sphere centred in the ROI lies in its bounding box grown by the kernel's half-width: crop to it
    half = np.array(sphere_kernel(_spacing3(spacing), float(diameter)).shape) // 2
    box = bounding_box(roi, [int(h) for h in half])
    assert box is not None
    sub, centres = np.asarray(image)[box], roi[box]
    if scope == "local":
        centres = centres & (sub == np.max(sub[centres]))
    means = sphere_means(sub, spacing, diameter, centres)
    best = int(np.argmax(means))
    voxel = [int(a[best]) + b.start for a, b in zip(np.nonzero(centres), box, strict=True)]
    return Peak(float(means[best]), (voxel[0], voxel[1], voxel[2]), definition, diameter)


@dataclass(frozen=True)
class Lesion:
    """One connected lesion: volume (ml), SUVbw max/mean/peak, TLG (SUVbw·ml), SULpeak and its sphere's centre
    voxel ``(z, y, x)``, SULmax (``None`` without SUL), site, centroid voxel."""

    label: int
    voxels: int
    volume_ml: float
    suv_max: float
    suv_mean: float
    tlg: float
    sul_peak: float | None
    sul_peak_voxel: tuple[int, int, int]
    sul_max: float | None
    site: str
    centroid_voxel: tuple[float, float, float]
    suv_peak: float = float("nan")


@dataclass(frozen=True)
class Biomarkers:
    """Patient-level biomarkers of one scan (see the module docstring for the definitions)."""

    lesion_count: int
    sul_peak: float | None
    sul_peak_voxel: tuple[int, int, int] | None
    sul_peak_definition: str
    suv_max: float | None
    suv_mean: float | None
    mtv_ml: float
    tlg: float
    bone_lesion_ml: float | None
    bone_ml: float | None
    pet_bone_index: float | None
    liver_lesion_ml: float | None
    liver_ml: float | None
    pet_liver_index: float | None
    lesions: tuple[Lesion, ...]
    #: the same peak on SUVbw (present also where the SUL is not: a PET in SUV without the patient's height, sex)
    suv_peak: float | None = None
    #: why ``sul_peak`` is ``None`` although there are lesions (no SUL: the patient data it needs are missing)
    sul_missing: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lesions"] = [asdict(lesion) for lesion in self.lesions]
        return out


def _site(component: np.ndarray, bone: np.ndarray | None, liver: np.ndarray | None) -> str:
    n = component.sum()
    if bone is not None and bone[component].sum() * 2 >= n:
        return "bone"
    if liver is not None and liver[component].sum() * 2 >= n:
        return "liver"
    return "other"


def _check_mask(mask: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask, bool)
    if mask.shape != shape:
        raise InputError(f"{name} shape {mask.shape} differs from the PET's {shape}; resample it onto the PET grid")
    return mask


def compute_biomarkers(
    suv: np.ndarray,
    sul: np.ndarray | None,
    lesions: np.ndarray,
    spacing: Sequence[float],
    bone: np.ndarray | None = None,
    liver: np.ndarray | None = None,
    peak_definition: PeakDefinition | str = PeakDefinition.STUDY,
    sul_missing: str | None = None,
) -> Biomarkers:
    """Biomarkers of a lesion mask on a PET (SUVbw ``suv`` and SUL ``sul`` on the same grid, ``(z, y, x)``,
    ``spacing`` mm). Bone and liver masks (on the PET grid) give the PET Bone and Liver Indices; without one,
    its index is ``None``. ``sul`` ``None`` (no patient height or sex; ``sul_missing`` says why): every SUL value
    is ``None`` and the peak is reported on SUVbw only (``suv_peak``), the same sphere at the same place."""
    if peak_definition not in PEAK_DEFINITIONS:
        raise InputError(f"peak definition {peak_definition!r}: use one of {', '.join(PEAK_DEFINITIONS)}")
    suv = np.asarray(suv)
    sul = np.asarray(sul) if sul is not None else None
    if sul is not None and suv.shape != sul.shape:
        raise InputError(f"SUV shape {suv.shape} differs from the SUL's {sul.shape}")
    mask = _check_mask(lesions, suv.shape, "lesion mask")
    assert mask is not None
    bone_mask = _check_mask(bone, suv.shape, "bone mask")
    liver_mask = _check_mask(liver, suv.shape, "liver mask")
    voxel_ml = float(np.prod(_spacing3(spacing))) / 1000.0
    labels, n = label_components(mask)
    reach = np.array(sphere_kernel(_spacing3(spacing), PEAK_DEFINITIONS[peak_definition][0]).shape) // 2
    found: list[Lesion] = []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        component = labels[box] == k
        values = suv[box][component]
        # the lesion's SULpeak on the SUL around it, grown by the sphere's reach: the whole image's result
        grown = tuple(
            slice(max(0, b.start - h), min(size, b.stop + h)) for b, h, size in zip(box, reach, suv.shape, strict=True)
        )
        inner = tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, grown, strict=True))
        around = np.zeros([g.stop - g.start for g in grown], bool)
        around[inner] = component
        # the peak sphere is placed on SUVbw; SUL is SUVbw times one factor, so it peaks at the same place
        lesion_peak = peak(suv[grown], around, spacing, peak_definition)
        assert lesion_peak is not None  # a component is never empty
        peak_voxel = tuple(int(v + g.start) for v, g in zip(lesion_peak.voxel, grown, strict=True))
        sul_peak = None
        if sul is not None:
            on_sul = peak(sul[grown], around, spacing, peak_definition)
            sul_peak = on_sul.value if on_sul is not None else None
        volume = component.sum() * voxel_ml
        found.append(
            Lesion(
                label=k,
                voxels=int(component.sum()),
                volume_ml=float(volume),
                suv_max=float(values.max()),
                suv_mean=float(values.mean(dtype=np.float64)),
                tlg=float(volume * values.mean(dtype=np.float64)),
                sul_peak=sul_peak,
                sul_peak_voxel=(peak_voxel[0], peak_voxel[1], peak_voxel[2]),
                sul_max=float(sul[box][component].max()) if sul is not None else None,
                site=_site(component, *(m[box] if m is not None else None for m in (bone_mask, liver_mask))),
                centroid_voxel=tuple(
                    float(c) + b.start for c, b in zip(np.argwhere(component).mean(axis=0), box, strict=True)
                ),
                suv_peak=lesion_peak.value,
            )
        )
    # the scan's peak is the best lesion's: for the global definitions the maximum over every segmented voxel,
    # for ibsi-local the peak at the hottest voxel of the whole mask (the best among lesions sharing it)
    candidates = found
    if PEAK_DEFINITIONS[peak_definition][1] == "local" and found:
        hottest = max(lesion.suv_max for lesion in found)
        candidates = [lesion for lesion in found if lesion.suv_max == hottest]
    best = max(candidates, key=lambda lesion: lesion.suv_peak, default=None)

    def index(site: str, organ: np.ndarray | None) -> tuple[float | None, float | None, float | None]:
        if organ is None:
            return None, None, None
        organ_ml = float(organ.sum() * voxel_ml)
        lesion_ml = float(sum(lesion.volume_ml for lesion in found if lesion.site == site))
        return lesion_ml, organ_ml, (lesion_ml / organ_ml if organ_ml > 0 else None)

    bone_lesion_ml, bone_ml, pbi = index("bone", bone_mask)
    liver_lesion_ml, liver_ml, pli = index("liver", liver_mask)
    return Biomarkers(
        lesion_count=n,
        sul_peak=best.sul_peak if best else None,
        sul_peak_voxel=best.sul_peak_voxel if best else None,
        sul_peak_definition=f"{peak_definition}: {PEAK_DEFINITIONS[peak_definition][2]}",
        suv_max=float(suv[mask].max()) if n else None,
        suv_mean=float(suv[mask].mean(dtype=np.float64)) if n else None,
        mtv_ml=float(mask.sum() * voxel_ml),
        tlg=float(sum(lesion.tlg for lesion in found)),
        bone_lesion_ml=bone_lesion_ml,
        bone_ml=bone_ml,
        pet_bone_index=pbi,
        liver_lesion_ml=liver_lesion_ml,
        liver_ml=liver_ml,
        pet_liver_index=pli,
        lesions=tuple(found),
        suv_peak=best.suv_peak if best else None,
        sul_missing=sul_missing if sul is None else None,
    )
