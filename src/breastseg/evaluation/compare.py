"""Compare a predicted mask with a reference mask: every segmentation metric at once.

This is what ``breastseg evaluate seg`` prints; the Python function mirrors it, and every workflow's evaluation
(``mri evaluate``, ``petct evaluate``, the batch runners) scores a prediction by the same rule:

**A reference on another grid.** Scores are computed on the reference's grid, and the reference stays as it was
drawn. A prediction on another grid is moved onto it by nearest neighbour through the physical geometry (label
values kept), provided none of its foreground lies outside the reference's field of view; a prediction that
reaches beyond it is refused, naming how many voxels would be lost, because dropping them would hide false
positives. The result says ``prediction_resampled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from breastseg.errors import InputError
from breastseg.evaluation import metrics as M
from breastseg.image import Image
from breastseg.masks import outside_voxels

SCHEMA_VERSION = 1


def check_same_grid(pred: Image, ref: Image, pred_name: str = "prediction", ref_name: str = "reference") -> None:
    """Raise :class:`InputError` saying how two images' grids differ (shape, spacing, origin, direction)."""
    if not pred.grid.same_as(ref.grid):
        raise InputError(
            f"{pred_name} and {ref_name} are not on the same voxel grid ({_grid_difference(pred, ref)}); "
            "resample one onto the other first"
        )


def prediction_on_reference(
    pred: Image, ref: Image, pred_name: str = "prediction", ref_name: str = "reference"
) -> tuple[Image, bool]:
    """``pred`` on ``ref``'s grid by the module's rule, and whether it had to be resampled.

    Raises:
        InputError: the two differ in dimension, or foreground of ``pred`` lies outside ``ref``'s field of view.
    """
    if pred.grid.same_as(ref.grid):
        return pred, False
    if pred.ndim != ref.ndim:
        raise InputError(f"{pred_name} is {pred.ndim}D and {ref_name} is {ref.ndim}D; compare masks of one image")
    lost = outside_voxels(pred, ref.grid)
    if lost:
        had = int(np.count_nonzero(np.asarray(pred.array) > 0))
        raise InputError(
            f"{pred_name}: {lost} of its {had} foreground voxels lie outside the field of view of {ref_name} "
            f"(another grid: {_grid_difference(pred, ref)}); scoring it there would drop them: check that both "
            "belong to the same image"
        )
    return pred.resample_onto(ref, order=0), True


def _grid_difference(a_image: Image, b_image: Image) -> str:
    a, b = a_image.grid, b_image.grid
    problems = []
    if a.shape != b.shape:
        problems.append(f"shape {a.shape} vs {b.shape}")
    if not np.allclose(a.spacing, b.spacing, atol=1e-4):
        problems.append(
            f"spacing {tuple(round(s, 5) for s in a.spacing)} vs {tuple(round(s, 5) for s in b.spacing)} mm"
        )
    if not np.allclose(a.origin, b.origin, atol=1e-4):
        problems.append(f"origin {tuple(round(s, 3) for s in a.origin)} vs {tuple(round(s, 3) for s in b.origin)} mm")
    if not np.allclose(a.direction, b.direction, atol=1e-6):
        problems.append("direction differs")
    return "; ".join(problems)


def _values(array: np.ndarray, most: int = 8) -> str:
    found = np.unique(array)
    shown = ", ".join(f"{v:g}" for v in found[:most])
    return shown + (f" … ({len(found)} in all)" if len(found) > most else "")


@dataclass(frozen=True)
class MaskComparison:
    """Every metric of one predicted mask against its reference (:func:`compare_masks`).

    Attributes:
        prediction, reference: the two masks' names (paths, as given).
        spacing_mm: the reference grid's spacing, array order, mm.
        prediction_resampled: the prediction was moved onto the reference's grid (the module's rule).
        dice, precision, recall, pixel_accuracy: overlap metrics (1 where the denominator is 0).
        hd95_mm, assd_mm: 95th-percentile Hausdorff and average symmetric surface distance, mm (the image
            diagonal when ``hd95_defined`` is False: one mask empty).
        surface_dice: surface Dice at ``tolerance_mm``.
        prediction_size, reference_size: foreground volume in ml (3D) or area in cm² (2D); ``size_unit`` says.
        confusion: pixel counts.
        ignored_pixels: reference pixels labelled unknown and left out; ``None`` without an ignore label.
        lesions: lesion-wise detection (3D only).
    """

    prediction: str
    reference: str
    spacing_mm: tuple[float, ...]
    prediction_resampled: bool
    dice: float
    precision: float
    recall: float
    pixel_accuracy: float
    hd95_mm: float
    hd95_defined: bool
    assd_mm: float
    surface_dice: float
    tolerance_mm: float
    prediction_size: float
    reference_size: float
    size_unit: str
    confusion: M.Confusion
    ignored_pixels: int | None = None
    lesions: M.LesionDetection | None = None

    def to_json(self) -> dict[str, Any]:
        """What ``breastseg evaluate seg`` prints and writes; sizes keyed ``prediction_volume_ml`` (3D) or
        ``prediction_area_cm2`` (2D)."""
        key = "volume_ml" if self.size_unit == "ml" else "area_cm2"
        c = self.confusion
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "prediction": self.prediction,
            "reference": self.reference,
            "spacing_mm": list(self.spacing_mm),
            "prediction_resampled": self.prediction_resampled,
            "dice": self.dice,
            "precision": self.precision,
            "recall": self.recall,
            "pixel_accuracy": self.pixel_accuracy,
            "hd95_mm": self.hd95_mm,
            "hd95_defined": self.hd95_defined,
            "assd_mm": self.assd_mm,
            "surface_dice": self.surface_dice,
            "tolerance_mm": self.tolerance_mm,
            f"prediction_{key}": self.prediction_size,
            f"reference_{key}": self.reference_size,
            "confusion": {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn},
        }
        if self.ignored_pixels is not None:
            out["ignored_pixels"] = self.ignored_pixels
        if (d := self.lesions) is not None:
            out["lesions"] = {"tp": d.tp, "fn": d.fn, "fp": d.fp, "recall": d.recall, "precision": d.precision}
        if not self.hd95_defined:
            out["note"] = "one mask is empty: HD95 and ASSD are set to the image diagonal (the worst case)"
        return out


def compare_masks(
    pred: Image,
    ref: Image,
    *,
    tolerance_mm: float = 1.0,
    label: int | None = None,
    ignore_label: int | None = None,
    pred_name: str = "prediction",
    ref_name: str = "reference",
) -> MaskComparison:
    """All segmentation metrics of ``pred`` against ``ref`` (on ``ref``'s grid, by the module's rule)
    (:meth:`MaskComparison.to_json` is what ``evaluate seg`` writes).

    Args:
        tolerance_mm: surface Dice tolerance.
        label: compare only this label value (default: any non-zero value is foreground).
        ignore_label: reference value meaning "unknown" (excluded from overlap metrics; the specimen study's
            lamella maps use 2).

    Returns:
        Dice, precision, recall, pixel accuracy, HD95 (mm), ASSD (mm), surface Dice, volumes (ml, or cm² for
        2D), and for 3D the lesion-wise detection counts.
    """
    pred, resampled = prediction_on_reference(pred, ref, pred_name, ref_name)
    ref_values = np.asarray(ref.array)
    ignore = ref_values == ignore_label if ignore_label is not None else None
    p = pred.array == label if label is not None else pred.array != 0
    r = ref_values == label if label is not None else ref_values != 0
    if label is not None and not p.any() and not r.any():  # "both empty, Dice 1" would be a typo's perfect score
        raise InputError(
            f"label {label} is in neither mask ({pred_name}: values {_values(pred.array)}; {ref_name}: values "
            f"{_values(ref_values)}); choose a label one of them holds"
        )
    if ignore is not None:
        r = r & ~ignore
    conf = M.confusion(p, r, ignore)
    surf = M.surface_metrics(np.where(ignore, False, p) if ignore is not None else p, r, ref.spacing, tolerance_mm)
    voxel = ref.voxel_volume_ml if ref.ndim == 3 else ref.pixel_area_cm2
    return MaskComparison(
        prediction=pred_name,
        reference=ref_name,
        spacing_mm=tuple(ref.spacing),
        prediction_resampled=resampled,
        dice=M.dice(p, r, ignore),
        precision=M.precision(p, r, ignore),
        recall=M.recall(p, r, ignore),
        pixel_accuracy=M.pixel_accuracy(p, r, ignore),
        hd95_mm=surf.hd95_mm,
        hd95_defined=surf.hd95_defined,
        assd_mm=surf.assd_mm,
        surface_dice=surf.surface_dice,
        tolerance_mm=tolerance_mm,
        prediction_size=float(np.count_nonzero(p) * voxel),
        reference_size=float(np.count_nonzero(r) * voxel),
        size_unit="ml" if ref.ndim == 3 else "cm2",
        confusion=conf,
        ignored_pixels=int(np.count_nonzero(ignore)) if ignore is not None else None,
        lesions=M.lesion_detection(p, r, ref.spacing) if ref.ndim == 3 else None,
    )
