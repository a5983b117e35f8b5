"""Histology → ultrasound label transfer, as Yao et al. 2026 built their reference standard: the pathologist
annotates cancer on the biopsy's whole-slide image, landmarks pair the slide with the ultrasound image of the
needle tract, and the annotation is warped into ultrasound space with the landmark transform.

Landmarks are given as pixel positions ``(column, row)`` — what a viewer shows — in each image; the images'
pixel spacings make them physical before the fit (:func:`breastseg.registration.register_landmarks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastseg.image import Grid, Image
from breastseg.registration import LandmarkRegistration, TransformKind, register_landmarks


def pixels_to_mm(grid: Grid, points_xy: np.ndarray) -> np.ndarray:
    """Pixel positions ``(n, 2)`` as ``(column, row)`` → physical ``(x, y)`` mm on ``grid``."""
    xy = np.asarray(points_xy, float)
    return grid.index_to_world(xy[:, ::-1])


@dataclass(eq=False)
class LabelTransfer:
    """The annotation on the ultrasound grid and the registration that put it there."""

    mask: Image
    registration: LandmarkRegistration

    def summary(self) -> dict[str, float | int | None]:
        r = self.registration
        loo = r.leave_one_out_mm
        return {
            "landmarks": int(r.residuals_mm.size),
            "residual_rms_mm": round(r.rms_mm, 4),
            "residual_max_mm": round(float(r.residuals_mm.max()), 4),
            "leave_one_out_rms_mm": None if loo is None else round(float(np.sqrt(np.mean(loo**2))), 4),
            "mask_pixels": int(np.count_nonzero(self.mask.array)),
        }


def transfer_annotation(
    annotation: Image,
    ultrasound: Image,
    histology_points_xy: np.ndarray,
    ultrasound_points_xy: np.ndarray,
    kind: TransformKind = "affine",
) -> LabelTransfer:
    """Warp a histology ``annotation`` (label mask on the slide's grid) onto the ``ultrasound`` grid.

    Args:
        histology_points_xy, ultrasound_points_xy: ``(n, 2)`` paired landmark pixels ``(column, row)``.
        kind: ``affine`` (the default: a slide shrinks and shears in processing), ``similarity`` or ``rigid``.
    """
    fixed = pixels_to_mm(ultrasound.grid, ultrasound_points_xy)
    moving = pixels_to_mm(annotation.grid, histology_points_xy)
    registration = register_landmarks(fixed, moving, kind)
    warped = registration.warp(annotation.with_array(annotation.array.astype(np.uint8)), ultrasound, order=0)
    return LabelTransfer(warped.with_array(warped.array > 0), registration)
