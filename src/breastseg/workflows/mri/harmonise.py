"""Harmonisation of a DCE exam as the breast-MRI study did it (Hirsch et al. 2022, Supplement):

1. **Resolution** — in-plane (y, x) ×2 upsampling (linear) when the in-plane voxel is coarser than
   ``upsample_above_mm`` (the study upsampled its low-resolution scans ×2 to match the others); the slice axis is
   left alone.
2. **Registration** — every phase (the pre-contrast T1 and the later post-contrast phases) deformably registered
   onto the first post-contrast T1c (:func:`breastseg.registration.register_bspline`, B-spline free-form
   deformation with mutual information, after a rigid start; ``method="rigid"`` for rigid only, ``"none"`` for
   exams already aligned). Registration runs at the acquired resolution; each phase is then resampled once,
   through its transform, onto the final (possibly upsampled) grid.
3. **Intensity** — every phase divided by the 95th percentile of the pre-contrast T1 inside the breast (the
   study's exam-wise scaling, which matched its scanner-wise histogram harmonisation). An optional T2-weighted
   image is registered the same way and divided by its own breast 95th percentile.

All images of an exam end on the first T1c's (possibly upsampled) grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.registration import register_bspline, register_rigid


class Method(StrEnum):
    """How the phases are registered onto the first T1c (``--registration``): B-spline, rigid, or not at all."""

    BSPLINE = "bspline"
    RIGID = "rigid"
    NONE = "none"


@dataclass(eq=False)
class HarmonisedExam:
    """A harmonised exam: pre-contrast ``t1`` and ``post`` phases on one grid, divided by ``scale``."""

    t1: Image
    post: list[Image]
    post_times_s: list[float]
    scale: float
    upsampled: bool
    t2: Image | None = None  # registered too, divided by its own breast 95th percentile (a different contrast)


def upsample_in_plane(image: Image, order: Literal[0, 1] = 1) -> Image:
    """The image on a grid with half the in-plane (y, x) voxel size over the same field of view."""
    z, y, x = image.spacing
    return image.resample_onto(image.grid.with_spacing((z, y / 2.0, x / 2.0)), order=order)


def needs_upsampling(image: Image, upsample_above_mm: float) -> bool:
    return max(image.spacing[1:]) > upsample_above_mm


def t1_scale(t1: Image, breast: np.ndarray | None, name: str = "pre-contrast T1") -> float:
    """95th percentile of the pre-contrast T1 (or the image ``name``) inside ``breast`` (the whole image when
    ``None``)."""
    values = t1.array[breast] if breast is not None else t1.array.ravel()
    if values.size == 0:
        raise InputError("the breast mask is empty: no tissue to scale the intensities by")
    scale = float(np.percentile(values, 95))
    if scale <= 0:
        raise InputError(f"the {name}'s 95th percentile in the breast is {scale}: cannot normalise")
    return scale


def harmonise(
    t1: Image,
    post: Sequence[Image],
    post_times_s: Sequence[float],
    breast: Callable[[Image], np.ndarray] | np.ndarray | None = None,
    method: Method = Method.BSPLINE,
    upsample_above_mm: float = 0.6,
    progress: Callable[[str], None] | None = None,
    t2: Image | None = None,
) -> HarmonisedExam:
    """Harmonise one exam (see the module docstring).

    Args:
        breast: a breast mask on the first T1c's final grid, or a function making one from the registered T1
            (e.g. :func:`breastseg.workflows.mri.breast_mask.breast_mask`), or ``None`` (the whole image).
    """
    if not post:
        raise InputError("a DCE exam needs at least one post-contrast phase")
    if len(post) != len(post_times_s):
        raise InputError(f"{len(post)} post-contrast phases but {len(post_times_s)} acquisition times")
    say = progress or (lambda _: None)
    fixed = post[0]
    upsampled = needs_upsampling(fixed, upsample_above_mm)
    reference = upsample_in_plane(fixed) if upsampled else fixed
    moved: list[Image] = []
    names = ["T1", *(f"T1c {i + 2}" for i in range(len(post) - 1)), *(["T2"] if t2 is not None else [])]
    for name, image in zip(names, [t1, *post[1:], *([t2] if t2 is not None else [])], strict=True):
        if method == "none":
            moved.append(image.resample_onto(reference, order=1))
            continue
        say(f"registering {name} onto T1c 1 ({method})")
        # registered at the acquired resolution (4 × fewer voxels than the upsampled grid, no new information)
        reg = register_bspline(fixed, image) if method == "bspline" else register_rigid(fixed, image)
        moved.append(reg.warp(image, reference, order=1))  # and resampled once, onto the final grid
    t1_on, rest = moved[0], moved[1 : len(post)]
    mask = breast(t1_on) if callable(breast) else breast
    region = None if mask is None else np.asarray(mask, bool)
    scale = t1_scale(t1_on, region)
    phases = [reference, *rest]
    t2_on = None
    if t2 is not None:
        t2_on = moved[-1].with_array(
            (moved[-1].array / t1_scale(moved[-1], region, "T2")).astype(np.float32), units="1"
        )
    return HarmonisedExam(
        t1_on.with_array((t1_on.array / scale).astype(np.float32), units="1"),
        [p.with_array((p.array / scale).astype(np.float32), units="1") for p in phases],
        [float(t) for t in post_times_s],
        scale,
        upsampled,
        t2_on,
    )
