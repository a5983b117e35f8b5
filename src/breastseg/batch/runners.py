"""What a cohort run does per case, per workflow: the manifest's columns, the models (loaded once per worker), the
workflow's own command on one case, the read-outs that go into the cohort table, and the cohort summary.

A runner is a small picklable dataclass (it travels to worker processes and Dask workers); :meth:`load` builds its
heavy state — a network bundle — once in each worker, and :meth:`run` writes the case's outputs exactly as the
single-case command does, into a folder replaced atomically.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from breastseg.batch.manifest import Case
from breastseg.errors import InputError
from breastseg.io.atomic import atomic_path


@dataclass(frozen=True)
class SpecimenRunner:
    """``specimen assess`` per case. Columns: ``ct``, ``pet`` (required), ``pet_info``, ``patient_id`` (the
    leakage guard: members trained on that patient are left out), and as references ``margin_status``
    (positive / negative, from pathology) and ``margin_mm``, which give the cohort's margin table."""

    config: Any = None  # AssessConfig (typed Any: the class is imported lazily to keep this module light)
    name: ClassVar[str] = "specimen"
    path_columns: ClassVar[tuple[str, ...]] = ("ct", "pet", "pet_info")
    required: ClassVar[tuple[str, ...]] = ("ct", "pet")

    def _config(self) -> Any:
        from breastseg.workflows.specimen.pipeline import AssessConfig

        return self.config or AssessConfig()

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self._config())

    def model_files(self) -> list[Path]:
        from breastseg.workflows.specimen.pipeline import default_model_path

        cfg = self._config()
        return [Path(cfg.model) if cfg.model else default_model_path(cfg.method)]

    def load(self) -> Any:
        from breastseg.workflows.specimen.pipeline import load_resunet

        cfg = self._config()
        return load_resunet(cfg) if cfg.method == "resunet" else None

    def run(self, state: Any, case: Case, out_dir: Path) -> dict[str, Any]:
        from breastseg.workflows.specimen.pipeline import (
            assess_specimen,
            choose_networks,
            load_specimen,
            write_assessment,
        )

        cfg = self._config()
        patient = case.cells.get("patient_id") or None
        if patient:
            cfg = dataclasses.replace(cfg, patient_id=patient)
            if state is not None:  # the same bundle, the networks independent of this patient
                state = choose_networks(state.path, state.bundle, cfg)
        ct, pet, info = load_specimen(case.inputs["ct"], case.inputs["pet"], case.inputs.get("pet_info"), cfg.pet_units)
        assessment = assess_specimen(ct, pet, info, cfg, model=state)
        assessment.result = assessment.result.with_inputs({k: str(v) for k, v in case.inputs.items()})
        write_assessment(assessment, ct, out_dir)
        r = assessment.result
        return {
            "margin_status": r.margin.status,
            "min_margin_mm": r.margin.min_margin_mm,
            "closest_face": r.margin.closest_face,
            "tumour_volume_ml": r.tumour_volume_ml,
            "specimen_volume_ml": r.specimen_volume_ml,
            "tumour_sul_max": r.tumour_sul_max,
            "ensemble_positive_fraction": r.margin.ensemble_positive_fraction,
        }

    def summary(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Counts of positive and negative calls; with references, the margin table (sensitivity, specificity,
        accuracy as the study's Table 3) and the mean absolute error of the margin in mm."""
        from breastseg.evaluation.metrics import margin_confusion

        done = [r for r in rows if r["status"] == "done"]
        out: dict[str, Any] = {
            "positive_calls": sum(r["margin_status"] == "positive" for r in done),
            "negative_calls": sum(r["margin_status"] == "negative" for r in done),
        }
        judged = [r for r in done if str(r.get("ref_margin_status", "")).lower() in ("positive", "negative")]
        if judged:
            called = [r["margin_status"] == "positive" for r in judged]
            truth = [str(r["ref_margin_status"]).lower() == "positive" for r in judged]
            out["margin_table"] = {**margin_confusion(called, truth).as_dict(), "n": len(judged)}
        errors = [
            abs(float(r["min_margin_mm"]) - float(r["ref_margin_mm"]))
            for r in done
            if r.get("min_margin_mm") is not None and str(r.get("ref_margin_mm", "")).strip()
        ]
        if errors:
            out["margin_mae_mm"] = statistics.fmean(errors)
        return out


@dataclass(frozen=True)
class PetctRunner:
    """``petct biomarkers`` per case. Columns: ``pet``, ``mask`` (required), ``pet_info``, ``liver_mask``,
    ``bone_mask``, and ``manual_mask`` — a reader's mask of the same scan, whose biomarkers are read too
    (``<biomarker>_manual``) and compared with the automatic ones in the summary (Lin's CCC, Spearman, Wilcoxon,
    Bland–Altman, as ``petct cohort``)."""

    peak_definition: str = "study"
    name: ClassVar[str] = "petct"
    path_columns: ClassVar[tuple[str, ...]] = ("pet", "mask", "pet_info", "liver_mask", "bone_mask", "manual_mask")
    required: ClassVar[tuple[str, ...]] = ("pet", "mask")
    readouts: ClassVar[tuple[str, ...]] = ("lesion_count", "sul_peak", "suv_max", "mtv_ml", "tlg")

    def options(self) -> dict[str, Any]:
        return {"peak_definition": self.peak_definition}

    def model_files(self) -> list[Path]:
        return []

    def load(self) -> Any:
        return None

    def run(self, state: Any, case: Case, out_dir: Path) -> dict[str, Any]:
        from breastseg.workflows.petct.scan import load_scan

        inputs = case.inputs
        scan = load_scan(
            inputs["pet"],
            inputs.get("pet_info"),
            bone_mask=inputs.get("bone_mask"),
            liver_mask=inputs.get("liver_mask"),
        )
        with atomic_path(out_dir, producer="petct biomarkers") as tmp:
            measured = scan.measure_to(
                inputs["mask"], tmp, self.peak_definition, provenance={k: str(v) for k, v in inputs.items()}
            )
        values = measured.biomarkers.to_dict()
        out = {k: values[k] for k in (*self.readouts, "pet_bone_index", "pet_liver_index")}
        if "manual_mask" in inputs:
            manual = scan.measure(inputs["manual_mask"], self.peak_definition, "manual mask")[0].to_dict()
            out.update({f"{k}_manual": manual[k] for k in self.readouts})
        return out

    def summary(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Median and interquartile range of each biomarker; with manual masks, the agreement analysis."""
        from breastseg.workflows.petct.cohort import agreement_analysis

        done = [r for r in rows if r["status"] == "done"]
        out = _median_iqr(done, self.readouts)
        if len(done) >= 3 and all(r.get("sul_peak_manual") is not None for r in done):
            out["agreement"] = {}
            for key in self.readouts:  # one biomarker at a time: a constant one (say, lesion count) has no CCC
                pairs = [{f"{key}_auto": r.get(key), f"{key}_manual": r.get(f"{key}_manual")} for r in done]
                try:
                    out["agreement"].update(agreement_analysis(pairs))
                except InputError as exc:
                    out["agreement"][key] = {"not_computed": str(exc)}
        return out


@dataclass(frozen=True)
class ResponseRunner:
    """``petct response`` per patient. Columns: ``baseline``, ``followup`` (scan folders as `petct response`
    reads them); as reference ``percist`` (CMR / PMR / SMD / PMD), which gives the summary the study's response
    analysis: ROC of each biomarker's change against PERCIST responders (AUC with DeLong's CI, Youden cut-off,
    Mann–Whitney), and how often the automatic category matches the reference."""

    peak_definition: str = "study"
    mask_name: str = "lesions.nii.gz"
    tolerance_mm: float = 10.0
    name: ClassVar[str] = "response"
    path_columns: ClassVar[tuple[str, ...]] = ("baseline", "followup")
    required: ClassVar[tuple[str, ...]] = ("baseline", "followup")

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_files(self) -> list[Path]:
        return []

    def load(self) -> Any:
        return None

    def run(self, state: Any, case: Case, out_dir: Path) -> dict[str, Any]:
        from breastseg.workflows.petct.longitudinal import measure_response

        result = measure_response(
            case.inputs["baseline"],
            case.inputs["followup"],
            out_dir,
            mask_name=self.mask_name,
            peak_definition=self.peak_definition,
            tolerance_mm=self.tolerance_mm,
        )
        if not result.assessable:  # recorded as such, and kept out of the cohort's response analysis
            from breastseg.sanity import NotAssessable

            raise NotAssessable("registration", f"{case.case_id}: {result.percist.reason}")
        out: dict[str, Any] = {"percist": result.percist.category, "new_lesions": result.new_lesion_count}
        out.update({f"delta_{k}": v for k, v in result.change_percent.items()})
        return out

    def summary(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        from breastseg.workflows.petct.cohort import CATEGORIES, biomarkers_with_changes, response_analysis

        done = [r for r in rows if r["status"] == "done"]
        out: dict[str, Any] = {"categories": {c: sum(r["percist"] == c for r in done) for c in CATEGORIES}}
        judged = [r for r in done if str(r.get("ref_percist", "")).upper() in CATEGORIES]
        if not judged:
            return out
        out["category_agreement"] = {
            "n": len(judged),
            "matching": sum(r["percist"] == str(r["ref_percist"]).upper() for r in judged),
        }
        table = [
            {"percist": str(r["ref_percist"]).upper(), **{k: v for k, v in r.items() if k.startswith("delta_")}}
            for r in judged
        ]
        try:
            out["response_analysis"] = response_analysis(table, biomarkers_with_changes(table))
        except InputError as exc:  # e.g. no responders among the references
            out["response_analysis"] = {"not_computed": str(exc)}
        return out


def _median_iqr(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Median and interquartile range of each key over the rows that have a value (two or more)."""
    out: dict[str, Any] = {}
    for key in keys:
        values = sorted(float(r[key]) for r in rows if r.get(key) not in (None, ""))
        if len(values) >= 2:
            q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
            out[key] = {"median": median, "q1": q1, "q3": q3, "n": len(values)}
    return out


@dataclass(frozen=True)
class MriRunner:
    """``mri segment`` per exam. Columns: ``exam`` (an exam folder as `mri segment --exam` reads it, required) and
    ``reference`` (a tumour mask, on any grid that covers the segmentation; scored on its grid), which adds the
    Dice of the segmentation to the table."""

    model: str = ""
    fraction: float = 0.6
    device: str = "auto"
    name: ClassVar[str] = "mri"
    path_columns: ClassVar[tuple[str, ...]] = ("exam", "reference")
    required: ClassVar[tuple[str, ...]] = ("exam",)
    readouts: ClassVar[tuple[str, ...]] = ("volume_ml", "longest_diameter_mm", "functional_volume_ml", "dice")

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_files(self) -> list[Path]:
        return [Path(self.model)]

    def load(self) -> Any:
        from breastseg.workflows.mri.network import MriModel

        return MriModel.load(self.model)

    def run(self, state: Any, case: Case, out_dir: Path) -> dict[str, Any]:
        from breastseg.evaluation.compare import prediction_on_reference
        from breastseg.evaluation.metrics import dice
        from breastseg.io import read_image
        from breastseg.workflows.mri.inputs import read_exam_folder
        from breastseg.workflows.mri.pipeline import segment_to_folder

        with atomic_path(out_dir, producer="mri segment") as tmp:
            result = segment_to_folder(
                read_exam_folder(case.inputs["exam"]), state, tmp, self.fraction, device=self.device
            )
        out: dict[str, Any] = result.tumour.to_json()
        if "reference" in case.inputs:
            reference = read_image(case.inputs["reference"])
            predicted, _ = prediction_on_reference(read_image(out_dir / "tumour.nii.gz"), reference, "the segmentation")
            out["dice"] = dice(predicted.array > 0, reference.array > 0)
        return out

    def summary(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Median and IQR of volume, longest diameter, functional volume and (with references) Dice; curve types."""
        done = [r for r in rows if r["status"] == "done"]
        out = _median_iqr(done, self.readouts)
        out["curve_types"] = {
            c: sum(r.get("curve_type") == c for r in done) for c in sorted({str(r.get("curve_type")) for r in done})
        }
        return out


@dataclass(frozen=True)
class UltrasoundRunner:
    """``ultrasound predict`` per image. Columns: ``image`` (required) and ``mask`` (a reference mask, same size),
    which adds Dice to the table."""

    model: str | None = None
    threshold: float | None = None  # None: the model's mask rule
    flip: bool = True
    name: ClassVar[str] = "ultrasound"
    path_columns: ClassVar[tuple[str, ...]] = ("image", "mask")
    required: ClassVar[tuple[str, ...]] = ("image",)

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_files(self) -> list[Path]:
        from breastseg.workflows.ultrasound.model import default_model_path

        return [Path(self.model) if self.model else default_model_path()]

    def load(self) -> Any:
        from breastseg.workflows.ultrasound.model import UltrasoundModel

        return UltrasoundModel.load(self.model_files()[0])

    def run(self, state: Any, case: Case, out_dir: Path) -> dict[str, Any]:
        import numpy as np
        from PIL import Image as PILImage

        from breastseg.evaluation.metrics import dice
        from breastseg.workflows.ultrasound.predict import predict_images

        rule = state.rule if self.threshold is None else dataclasses.replace(state.rule, threshold=self.threshold)
        with atomic_path(out_dir, producer="ultrasound predict") as tmp:
            (result,) = predict_images([case.inputs["image"]], state, tmp, rule, flip=self.flip)
        out: dict[str, Any] = {
            "lesion_found": result.lesion_found,
            "area_px": result.area_px,
            "area_mm2": result.area_mm2,
        }
        if "mask" in case.inputs:
            predicted = np.asarray(PILImage.open(out_dir / result.mask)) > 0
            with PILImage.open(case.inputs["mask"]) as im:
                reference = np.asarray(im.convert("L")) > 0
            if reference.shape != predicted.shape:
                raise InputError(
                    f"{case.inputs['mask']}: reference mask {reference.shape} is not the image's size {predicted.shape}"
                )
            out["dice"] = dice(predicted, reference)
        return out

    def summary(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """How many images have a lesion found; median and IQR of the area and (with references) Dice."""
        done = [r for r in rows if r["status"] == "done"]
        out = _median_iqr(done, ("area_mm2", "area_px", "dice"))
        out["lesion_found"] = sum(str(r.get("lesion_found")).lower() == "true" for r in done)
        return out


RUNNERS: dict[str, type] = {
    "specimen": SpecimenRunner,
    "petct": PetctRunner,
    "response": ResponseRunner,
    "mri": MriRunner,
    "ultrasound": UltrasoundRunner,
}
