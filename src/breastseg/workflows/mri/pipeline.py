"""One call per job, as the command line runs it: segment an exam and write its outputs; read a training table.

Outputs of :func:`segment_to_folder` (each written to a temporary file, then renamed):

* ``tumour.nii.gz`` — the tumour mask on the first post-contrast image's original grid (uint8, 1 = tumour);
* ``probability.nii.gz`` — the network's tumour probability on the harmonised grid;
* ``result.json`` — the read-outs (volume ml, longest diameter mm, kinetic curve type, functional tumour volume
  ml), the exam's harmonisation (scale, upsampling, registration) and the model used;
* ``report.png`` — the tumour outlined on the subtraction image in three planes and on T1c, and the kinetics;
* given ``dicom_out`` and an exam read from DICOM: ``seg.dcm``, ``sr.dcm``, ``report.dcm`` there
  (:mod:`breastseg.workflows.mri.dicom_export`), on the first post-contrast phase's images.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from breastseg._version import __version__
from breastseg.errors import InputError
from breastseg.evaluation.compare import compare_masks
from breastseg.image import Image
from breastseg.io import read_image, write_image
from breastseg.io.atomic import write_json
from breastseg.io.tables import read_csv_rows, write_csv_rows
from breastseg.workflows.mri.exam import DceExam
from breastseg.workflows.mri.figures import write_dce_report
from breastseg.workflows.mri.inputs import (
    MriPreprocessing,
    PreparedExam,
    prepare_exam,
    read_exam_folder,
    read_reference,
)
from breastseg.workflows.mri.network import MriModel, segment_exam
from breastseg.workflows.mri.readouts import TumourReadout


@dataclass(frozen=True)
class MriSegmentation:
    """What :func:`segment_to_folder` read from one exam (``result.json`` is :meth:`to_json`).

    Attributes:
        exam: where the exam was read from.
        tumour: the read-outs (volume ml, longest diameter mm, curve type, functional tumour volume ml).
        tumour_found: the mask holds at least one voxel.
        post_times_s: the post-contrast phases' times after injection, s.
        has_t2: a T2 series was part of the input.
        harmonisation: how the exam was brought to the model's inputs (T1 scale, in-plane upsampling,
            registration, breast mask, working grid spacing in mm).
        fraction, per_slice: the post-processing's settings.
        model: the model's card.
    """

    exam: str
    tumour: TumourReadout
    tumour_found: bool
    post_times_s: list[float]
    has_t2: bool
    harmonisation: dict[str, Any]
    fraction: float
    per_slice: bool
    model: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "exam": self.exam,
            "tumour": self.tumour.to_json(),
            "tumour_found": self.tumour_found,
            "post_times_s": self.post_times_s,
            "t2": self.has_t2,
            "harmonisation": self.harmonisation,
            "postprocessing": {"fraction": self.fraction, "per_slice": self.per_slice},
            "model": self.model,
            "breastseg_version": __version__,
            "units": {"volume_ml": "ml", "longest_diameter_mm": "mm", "functional_volume_ml": "ml (PE ≥ 70 %)"},
        }


@dataclass(frozen=True)
class CaseScore:
    """One exam of :func:`evaluate_cases` against its reference (volumes ml, HD95 mm, volume error %)."""

    case_id: str
    dice: float
    hd95_mm: float
    reference_volume_ml: float
    predicted_volume_ml: float
    volume_error_percent: float | None
    curve_type: str | None

    def row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class MriEvaluation:
    """What :func:`evaluate_cases` scored (``evaluation.json`` is :meth:`to_json`)."""

    cases: list[CaseScore]
    model_source: str | None = None

    @property
    def mean_dice(self) -> float | None:
        return float(np.mean([c.dice for c in self.cases])) if self.cases else None

    @property
    def median_dice(self) -> float | None:
        return float(np.median([c.dice for c in self.cases])) if self.cases else None

    def to_json(self) -> dict[str, Any]:
        summary = {
            "cases": len(self.cases),
            "mean_dice": self.mean_dice,
            "median_dice": self.median_dice,
            "model": self.model_source,
        }
        return {"summary": summary, "cases": [c.row() for c in self.cases]}


def model_name(model: MriModel) -> str:
    """The network as the report names it: its architecture and the day it was trained."""
    trained = model.card.get("trained")
    return type(model.net).__name__.removesuffix("Config") + (f", trained {trained}" if trained else "")


def segment_to_folder(
    exam: DceExam,
    model: MriModel,
    out_dir: str | Path,
    fraction: float = 0.6,
    per_slice: bool = False,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
    breast_network: Callable[[Image], np.ndarray] | None = None,
    dicom_out: str | Path | None = None,
) -> MriSegmentation:
    """Segment the tumour of ``exam`` with ``model`` and write the outputs (see the module docstring);
    ``breast_network`` as :func:`breastseg.workflows.mri.inputs.prepare_exam`; ``dicom_out``: where the SEG, SR
    and secondary capture go (the exam must have been read from DICOM)."""
    if dicom_out is not None and exam.first_post_dicom is None:
        raise InputError(f"{exam.source}: DICOM outputs need an exam read from DICOM (its images to reference)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prepared = prepare_exam(exam, model.preprocessing, progress, breast_network)
    seg = segment_exam(model, prepared, fraction, per_slice, device, progress)
    h = prepared.harmonised
    result = MriSegmentation(
        exam=exam.source,
        tumour=seg.readout,
        tumour_found=bool(seg.mask.array.any()),
        post_times_s=list(h.post_times_s),
        has_t2=h.t2 is not None,
        harmonisation={
            "t1_scale": h.scale,
            "upsampled_in_plane": h.upsampled,
            "registration": model.preprocessing.registration,
            "breast_mask": model.preprocessing.breast,
            "grid_spacing_mm": list(prepared.grid_image.spacing),
        },
        fraction=fraction,
        per_slice=per_slice,
        model=model.card,
    )
    write_image(seg.mask_original, out / "tumour.nii.gz")
    write_image(seg.probability, out / "probability.nii.gz")
    readout = seg.readout
    write_dce_report(
        h.t1.array,
        [p.array for p in h.post],
        h.post_times_s,
        seg.mask.array > 0,
        prepared.breast,
        prepared.grid_image,
        out / "report.png",
        title=f"tumour {readout.volume_ml:.2f} ml · longest diameter {readout.longest_diameter_mm:.1f} mm · "
        f"{readout.curve_type or 'no curve'}"
        + ("" if readout.late_change_percent is None else f" (late change {readout.late_change_percent:+.0f} %)"),
        t2=None if h.t2 is None else h.t2.array,
        header=f"exam {Path(exam.source).name} · model {model_name(model)} · assessed {datetime.date.today()}",
    )
    if dicom_out is not None:
        from breastseg.workflows.mri.dicom_export import write_mri_dicom_outputs

        assert exam.first_post_dicom is not None
        write_mri_dicom_outputs(seg.readout, seg.mask_original.array > 0, exam.first_post_dicom, out / "report.png",
                                dicom_out)  # fmt: skip
    write_json(result.to_json(), out / "result.json")
    return result


@dataclass(frozen=True)
class TrainingCase:
    case_id: str
    exam_dir: Path
    tumour_name: str


def breast_mask_function(path: str | Path | None, device: str = "auto") -> Callable[[Image], np.ndarray] | None:
    """The breast-mask function of a breast model file (``mri train-breast``), or ``None``: the study's rule."""
    if path is None:
        return None
    from breastseg.workflows.mri.breast_network import BreastModel

    return BreastModel.load(path).as_function(device)


def segment_exam_folder(
    exam: str | Path | DceExam,
    model: str | Path | MriModel,
    out_dir: str | Path,
    fraction: float = 0.6,
    per_slice: bool = False,
    device: str = "auto",
    breast_model: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> MriSegmentation:
    """``mri segment``: an exam folder (or an exam already read) and a model file (or a loaded model) in, the
    tumour mask, ``result.json`` and ``report.png`` in ``out_dir`` (:func:`segment_to_folder`); ``breast_model``:
    a breast model file instead of the rule."""
    read = exam if isinstance(exam, DceExam) else read_exam_folder(exam)
    loaded = model if isinstance(model, MriModel) else MriModel.load(model)
    breast = breast_mask_function(breast_model, device)
    return segment_to_folder(read, loaded, out_dir, fraction, per_slice, device, progress, breast)


def read_cases_csv(path: str | Path, tumour_name: str = "tumour.nii.gz") -> list[TrainingCase]:
    """A table of exams: ``case_id``, ``exam`` (a folder, relative to the table), optional ``tumour`` (the
    reference mask's file name in that folder, default ``tumour_name``)."""
    path = Path(path)
    rows = read_csv_rows(path, ("case_id", "exam"), "MRI case table")
    cases = []
    for row in rows:
        folder = Path(row["exam"])
        folder = folder if folder.is_absolute() else path.parent / folder
        cases.append(TrainingCase(row["case_id"], folder, row.get("tumour") or tumour_name))
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: case ids must be unique")
    return cases


def prepare_cases(
    cases: Sequence[TrainingCase],
    preprocessing: MriPreprocessing,
    progress: Callable[[str], None] | None = None,
    breast_network: Callable[[Image], np.ndarray] | None = None,
) -> list[tuple[str, PreparedExam, np.ndarray]]:
    """Every case read, harmonised and paired with its reference mask on the harmonised grid."""
    say = progress or (lambda _: None)
    prepared = []
    for i, case in enumerate(cases):
        say(f"preparing {case.case_id} ({i + 1} of {len(cases)})")
        exam = prepare_exam(read_exam_folder(case.exam_dir), preprocessing, breast_network=breast_network)
        prepared.append((case.case_id, exam, read_reference(case.exam_dir, exam, case.tumour_name)))
    return prepared


def validation_split(case_ids: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """``(training, validation)`` case ids: ``round(fraction × n)`` cases (at least one when ``fraction`` > 0
    and there are two or more) held out at random (seeded)."""
    n = len(case_ids)
    k = 0 if fraction <= 0 or n < 2 else min(n - 1, max(1, round(fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    held = {case_ids[i] for i in order[:k]}
    return [c for c in case_ids if c not in held], [c for c in case_ids if c in held]


def evaluate_cases(
    cases: Sequence[TrainingCase],
    model: MriModel,
    out_dir: str | Path,
    fraction: float = 0.6,
    device: str = "auto",
    breast_network: Callable[[Image], np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
    model_source: str | None = None,
) -> MriEvaluation:
    """``mri evaluate``: segment every exam of ``cases`` into ``out_dir/<case>/`` (:func:`segment_to_folder`) and
    score it against the case's reference mask on the reference's grid (the rule of
    :mod:`breastseg.evaluation.compare`): Dice, HD95 (mm), volumes (ml), volume error (%), curve type. Writes
    ``cases.csv`` and ``evaluation.json`` (``model_source``, where the model came from, is recorded in its
    summary)."""
    out = Path(out_dir)
    rows = []
    for i, case in enumerate(cases):
        if progress is not None:
            progress(f"{case.case_id} ({i + 1} of {len(cases)})")
        result = segment_to_folder(
            read_exam_folder(case.exam_dir), model, out / case.case_id, fraction, device=device,
            breast_network=breast_network,
        )  # fmt: skip
        pred = read_image(out / case.case_id / "tumour.nii.gz")
        ref_path = case.exam_dir / case.tumour_name
        ref = read_image(ref_path)
        ref = ref.with_array((np.asarray(ref.array) > 0).astype(np.uint8), units="label")
        m = compare_masks(pred, ref, pred_name="the segmentation (first T1c grid)", ref_name=str(ref_path))
        ref_ml, pred_ml = m.reference_size, m.prediction_size
        rows.append(
            CaseScore(
                case_id=case.case_id,
                dice=m.dice,
                hd95_mm=m.hd95_mm,
                reference_volume_ml=ref_ml,
                predicted_volume_ml=pred_ml,
                volume_error_percent=100.0 * (pred_ml - ref_ml) / ref_ml if ref_ml else None,
                curve_type=result.tumour.curve_type,
            )
        )
    write_csv_rows([r.row() for r in rows], out / "cases.csv")
    evaluation = MriEvaluation(rows, model_source)
    write_json(evaluation.to_json(), out / "evaluation.json")
    return evaluation
