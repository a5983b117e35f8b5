"""Segmentation quality on PET/CT scans, as the study reports it (section 2.3): mean Dice per scan, global Dice
(all scans pooled), lesion-wise detection with the 50 % rules (recall, precision), autoPET's false-positive and
false-negative volumes (ml), and Wilcoxon signed-rank tests of per-scan Dice between two segmentations.

Scans whose reference has no lesion (a complete response at follow-up) have no Dice: they are left out of the
mean Dice, counted in the global Dice only through their false positives, and reported by their false-positive
volume, as autoPET does.

**A blob cannot pass.** The 50 % rules and autoPET's volumes reward one component covering the body (every lesion
"detected", one false positive, a false-positive volume of 0 ml because it touches the reference), so each scan
also reports the predicted-to-reference volume ratio, the predicted components that merge several reference
lesions, and the share of the body the prediction covers (body: the CT above −500 HU on the PET grid, or the whole
image without a CT); a prediction over :data:`MAX_BODY_FRACTION` of the body is flagged, warned about by
``petct evaluate``, and the post-processing is not chosen on such predictions.
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
from breastseg.workflows.petct.longitudinal import PatientScans, first_existing, lesion_mask_path
from breastseg.workflows.petct.readout import read_mask_on

#: a prediction covering more of the body than this is degenerate (no lesion burden is a fifth of the body)
MAX_BODY_FRACTION = 0.2
BODY_HU = -500.0


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
    #: predicted / reference volume (``None`` without reference lesions)
    volume_ratio: float | None = None
    #: predicted components holding most of two or more detected reference lesions
    merged_components: int = 0
    #: share of the body (or of the image, without a body mask) the prediction covers
    body_fraction: float = 0.0

    @property
    def degenerate(self) -> bool:
        """The prediction covers more than :data:`MAX_BODY_FRACTION` of the body."""
        return self.body_fraction > MAX_BODY_FRACTION

    def row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def score_scan(
    case: str,
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: Sequence[float],
    body: np.ndarray | None = None,
) -> ScanScore:
    """Dice (``None`` without reference lesions), voxel counts, lesion detection, autoPET volumes, and what a blob
    shows itself by (see the module docstring; ``body`` on the same grid, default the whole image)."""
    pred, ref = np.asarray(prediction, bool), np.asarray(reference, bool)
    if pred.shape != ref.shape:
        raise InputError(f"{case}: prediction shape {pred.shape} differs from the reference's {ref.shape}")
    c = confusion(pred, ref)
    detection = lesion_detection(pred, ref, spacing)
    fp_ml, fn_ml = false_positive_negative_volumes_ml(pred, ref, spacing)
    region = np.asarray(body, bool) if body is not None else None
    body_voxels = int(region.sum()) if region is not None else pred.size
    covered = int((pred & region).sum()) if region is not None else int(pred.sum())
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
        volume_ratio=float(pred.sum() / ref.sum()) if ref.any() else None,
        merged_components=detection.merged,
        body_fraction=covered / body_voxels if body_voxels else 0.0,
    )


def read_body(folder: Path, target: Any) -> np.ndarray | None:
    """The body of a scan folder on ``target``'s grid (its CT above :data:`BODY_HU`), ``None`` without a CT."""
    from breastseg.workflows.petct.inputs import CT_NAMES

    path = first_existing(folder, CT_NAMES)
    if path is None:
        return None
    ct = read_image(path, modality="CT").resample_onto(target, order=1, fill=-1000.0)
    return np.asarray(ct.array > BODY_HU)


@dataclass(frozen=True)
class ScansSummary:
    """Segmentation quality pooled over scans (the study's section 2.3); ratios ``None`` where undefined.

    Attributes:
        scans: scans scored; ``scans_with_lesions``: those whose reference has a lesion (the only ones with a Dice).
        mean_dice, sd_dice: over the scans with lesions.
        global_dice: all scans' voxels pooled.
        lesion_recall, lesion_precision: pooled lesion-wise detection (the 50 % rules).
        mean_fp_volume_ml, mean_fn_volume_ml: autoPET's false-positive / false-negative volumes, ml.
        median_volume_ratio: of predicted / reference volume over the scans with lesions.
        merged_components: predicted components merging several reference lesions, all scans.
        degenerate_scans: the scans whose prediction covers more than a fifth of the body.
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
    median_volume_ratio: float | None = None
    merged_components: int = 0
    degenerate_scans: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["degenerate_scans"] = list(self.degenerate_scans)
        return out


def summarise_scans(scores: Sequence[ScanScore]) -> ScansSummary:
    """Mean Dice per scan (scans with reference lesions), global Dice, pooled lesion recall and precision,
    mean false-positive / false-negative volumes."""
    if not scores:
        raise InputError("no scans to summarise")
    dices = [s.dice for s in scores if s.dice is not None]
    tp, fp, fn = (sum(getattr(s, k) for s in scores) for k in ("tp_voxels", "fp_voxels", "fn_voxels"))
    ltp, lfn, lfp = (sum(getattr(s, k) for s in scores) for k in ("lesions_tp", "lesions_fn", "lesions_fp"))
    ratios = [s.volume_ratio for s in scores if s.volume_ratio is not None]
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
        median_volume_ratio=float(np.median(ratios)) if ratios else None,
        merged_components=sum(s.merged_components for s in scores),
        degenerate_scans=tuple(s.case for s in scores if s.degenerate),
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
    bodies: dict[str, np.ndarray | None] = {}
    for name in prediction_names:
        per_scan = {}
        for case, patient, when in scans:
            reference = read_image(lesion_mask_path(patient.scan(when), reference_name))
            prediction = read_mask_on(patient.mask_path(when, name, prediction_dir), reference, "prediction")
            body = bodies.setdefault(case, read_body(patient.scan(when), reference))
            per_scan[case] = score_scan(case, prediction, reference.array > 0, reference.spacing, body)
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
