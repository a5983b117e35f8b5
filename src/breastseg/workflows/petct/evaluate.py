"""Segmentation quality on PET/CT scans, as the study reports it (section 2.3): mean Dice per scan, global Dice
(all scans pooled), lesion-wise detection with the 50 % rules (recall, precision), autoPET's false-positive and
false-negative volumes (ml), and Wilcoxon signed-rank tests of per-scan Dice between two segmentations.

Scans whose reference has no lesion (a complete response at follow-up) have no Dice: they are left out of the
mean Dice, counted in the global Dice only through their false positives, and reported by their false-positive
volume, as autoPET does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.errors import InputError
from breastseg.evaluation.metrics import (
    confusion,
    dice,
    false_positive_negative_volumes_ml,
    lesion_detection,
)
from breastseg.evaluation.stats import wilcoxon
from breastseg.io import read_image
from breastseg.io.atomic import write_json
from breastseg.io.tables import write_csv_rows
from breastseg.workflows.petct.longitudinal import PatientScans, lesion_mask_path
from breastseg.workflows.petct.readout import read_mask_on


@dataclass(frozen=True)
class ScanScore:
    """One scan's prediction against its reference."""

    case: str
    dice: float | None
    tp_voxels: int
    fp_voxels: int
    fn_voxels: int
    lesions_tp: int
    lesions_fn: int
    lesions_fp: int
    fp_volume_ml: float
    fn_volume_ml: float

    def row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def score_scan(case: str, prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float]) -> ScanScore:
    """Dice (``None`` without reference lesions), voxel counts, lesion detection and autoPET volumes."""
    pred, ref = np.asarray(prediction, bool), np.asarray(reference, bool)
    if pred.shape != ref.shape:
        raise InputError(f"{case}: prediction shape {pred.shape} differs from the reference's {ref.shape}")
    c = confusion(pred, ref)
    detection = lesion_detection(pred, ref, spacing)
    fp_ml, fn_ml = false_positive_negative_volumes_ml(pred, ref, spacing)
    return ScanScore(
        case,
        dice(pred, ref) if ref.any() else None,
        c.tp,
        c.fp,
        c.fn,
        detection.tp,
        detection.fn,
        detection.fp,
        fp_ml,
        fn_ml,
    )


@dataclass(frozen=True)
class ScansSummary:
    """Segmentation quality pooled over scans (the study's section 2.3); ratios ``None`` where undefined.

    Attributes:
        scans: scans scored; ``scans_with_lesions``: those whose reference has a lesion (the only ones with a Dice).
        mean_dice, sd_dice: over the scans with lesions.
        global_dice: all scans' voxels pooled.
        lesion_recall, lesion_precision: pooled lesion-wise detection (the 50 % rules).
        mean_fp_volume_ml, mean_fn_volume_ml: autoPET's false-positive / false-negative volumes, ml.
    """

    scans: int
    scans_with_lesions: int
    mean_dice: float | None
    sd_dice: float | None
    global_dice: float | None
    lesion_recall: float | None
    lesion_precision: float | None
    mean_fp_volume_ml: float
    mean_fn_volume_ml: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summarise_scans(scores: Sequence[ScanScore]) -> ScansSummary:
    """Mean Dice per scan (scans with reference lesions), global Dice, pooled lesion recall and precision,
    mean false-positive / false-negative volumes."""
    if not scores:
        raise InputError("no scans to summarise")
    dices = [s.dice for s in scores if s.dice is not None]
    tp, fp, fn = (sum(getattr(s, k) for s in scores) for k in ("tp_voxels", "fp_voxels", "fn_voxels"))
    ltp, lfn, lfp = (sum(getattr(s, k) for s in scores) for k in ("lesions_tp", "lesions_fn", "lesions_fp"))
    return ScansSummary(
        scans=len(scores),
        scans_with_lesions=len(dices),
        mean_dice=float(np.mean(dices)) if dices else None,
        sd_dice=float(np.std(dices, ddof=1)) if len(dices) > 1 else None,
        global_dice=2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
        lesion_recall=ltp / (ltp + lfn) if ltp + lfn else None,
        lesion_precision=ltp / (ltp + lfp) if ltp + lfp else None,
        mean_fp_volume_ml=float(np.mean([s.fp_volume_ml for s in scores])),
        mean_fn_volume_ml=float(np.mean([s.fn_volume_ml for s in scores])),
    )


@dataclass(frozen=True)
class PairedDice:
    """Two segmentations of the same scans: mean Dice of each and the Wilcoxon signed-rank p of per-scan Dice."""

    scans: int
    mean_dice_a: float
    mean_dice_b: float
    wilcoxon_p: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def compare_segmentations(a: Mapping[str, ScanScore], b: Mapping[str, ScanScore]) -> PairedDice:
    """Wilcoxon signed-rank test of per-scan Dice between two segmentations of the same scans (scans with
    reference lesions, paired by case)."""
    cases = [c for c in a if c in b and a[c].dice is not None and b[c].dice is not None]
    if len(cases) < 2:
        raise InputError("need at least two scans with lesions scored by both segmentations")
    x = [float(d) for c in cases if (d := a[c].dice) is not None]
    y = [float(d) for c in cases if (d := b[c].dice) is not None]
    return PairedDice(len(cases), float(np.mean(x)), float(np.mean(y)), wilcoxon(x, y).p_value)


@dataclass(frozen=True)
class PetctEvaluation:
    """What :func:`evaluate_patients` scored (``evaluation.json`` is :meth:`to_json`): each prediction's summary,
    by its file name, and each pair's paired test, keyed ``"<a> vs <b>"``."""

    reference: str
    summaries: dict[str, ScansSummary]
    comparisons: dict[str, PairedDice]

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "summaries": {name: s.to_json() for name, s in self.summaries.items()},
            "comparisons": {pair: c.to_json() for pair, c in self.comparisons.items()},
        }


def evaluate_patients(
    patients: Sequence[PatientScans],
    prediction_names: Sequence[str],
    out_dir: str | Path,
    reference_name: str = "lesions.nii.gz",
    timepoint: str = "baseline",
    prediction_dir: str | Path | None = None,
) -> PetctEvaluation:
    """``petct evaluate``: score each prediction file (``prediction_names``, in every scan folder, or in
    ``prediction_dir`` as ``petct predict --out`` wrote them) against the reference mask of the scan's folder, for
    the ``baseline``, ``followup`` or ``both`` scans; pairwise Wilcoxon comparisons between predictions. Writes
    ``scans_<name>.csv`` per prediction and ``evaluation.json`` into ``out_dir``. Predictions on another grid are
    scored on the reference's (:func:`~breastseg.workflows.petct.readout.read_mask_on`)."""
    if timepoint not in ("baseline", "followup", "both"):
        raise InputError(f"timepoint {timepoint!r}: use baseline, followup or both")
    scans = []
    for p in patients:
        if timepoint in ("baseline", "both"):
            scans.append((f"{p.patient_id}_baseline", p, "baseline"))
        if timepoint in ("followup", "both") and p.followup is not None:
            scans.append((f"{p.patient_id}_followup", p, "followup"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict[str, ScanScore]] = {}
    for name in prediction_names:
        per_scan = {}
        for case, patient, when in scans:
            reference = read_image(lesion_mask_path(patient.scan(when), reference_name))
            prediction = read_mask_on(patient.mask_path(when, name, prediction_dir), reference, "prediction")
            per_scan[case] = score_scan(case, prediction, reference.array > 0, reference.spacing)
        scores[name] = per_scan
        write_csv_rows([s.row() for s in per_scan.values()], out / f"scans_{name.split('.')[0]}.csv")
    evaluation = PetctEvaluation(
        reference_name,
        {name: summarise_scans(list(s.values())) for name, s in scores.items()},
        {
            f"{a} vs {b}": compare_segmentations(scores[a], scores[b])
            for i, a in enumerate(prediction_names)
            for b in prediction_names[i + 1 :]
        },
    )
    write_json(evaluation.to_json(), out / "evaluation.json")
    return evaluation
