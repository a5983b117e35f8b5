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


def compare_masks(
    pred: Image,
    ref: Image,
    *,
    tolerance_mm: float = 1.0,
    label: int | None = None,
    ignore_label: int | None = None,
    pred_name: str = "prediction",
    ref_name: str = "reference",
) -> dict[str, Any]:
    """All segmentation metrics of ``pred`` against ``ref`` (on ``ref``'s grid, by the module's rule), as a
    JSON-ready dict.

    Args:
        tolerance_mm: surface Dice tolerance.
        label: compare only this label value (default: any non-zero value is foreground).
        ignore_label: reference value meaning "unknown" (excluded from overlap metrics; the specimen study's
            lamella maps use 2).

    Returns:
        Dice, precision, recall, pixel accuracy, HD95 (mm), ASSD (mm), surface Dice, volumes (ml, or cm² for
        2D), and for 3D the lesion-wise detection counts. Every number's unit is in its key.
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
    size_key = "volume_ml" if ref.ndim == 3 else "area_cm2"
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "prediction": pred_name,
        "reference": ref_name,
        "spacing_mm": list(ref.spacing),
        "prediction_resampled": resampled,
        "dice": M.dice(p, r, ignore),
        "precision": M.precision(p, r, ignore),
        "recall": M.recall(p, r, ignore),
        "pixel_accuracy": M.pixel_accuracy(p, r, ignore),
        "hd95_mm": surf.hd95_mm,
        "hd95_defined": surf.hd95_defined,
        "assd_mm": surf.assd_mm,
        "surface_dice": surf.surface_dice,
        "tolerance_mm": tolerance_mm,
        f"prediction_{size_key}": float(np.count_nonzero(p) * voxel),
        f"reference_{size_key}": float(np.count_nonzero(r) * voxel),
        "confusion": {"tp": conf.tp, "fp": conf.fp, "fn": conf.fn, "tn": conf.tn},
    }
    if ignore is not None:
        out["ignored_pixels"] = int(np.count_nonzero(ignore))
    if ref.ndim == 3:
        det = M.lesion_detection(p, r, ref.spacing)
        out["lesions"] = {"tp": det.tp, "fn": det.fn, "fp": det.fp, "recall": det.recall, "precision": det.precision}
    if not surf.hd95_defined:
        out["note"] = "one mask is empty: HD95 and ASSD are set to the image diagonal (the worst case)"
    return out
