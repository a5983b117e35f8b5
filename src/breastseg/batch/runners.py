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
        from breastseg.workflows.specimen.pipeline import LoadedBundle, assess_specimen, load_specimen, write_assessment

        cfg = self._config()
        patient = case.cells.get("patient_id") or None
        if patient:
            cfg = dataclasses.replace(cfg, patient_id=patient)
            if state is not None:  # the same bundle, this patient's members left out
                state = LoadedBundle(state.path, state.bundle, state.bundle.ensemble(exclude_patient=patient))
        ct, pet, info = load_specimen(case.inputs["ct"], case.inputs["pet"], case.inputs.get("pet_info"), cfg.pet_units)
        assessment = assess_specimen(ct, pet, info, cfg, model=state)
        assessment.result["inputs"] = {k: str(v) for k, v in case.inputs.items()}
        write_assessment(assessment, ct, out_dir)
        r = assessment.result
        return {
            "margin_status": r["margin_status"],
            "min_margin_mm": r["min_margin_mm"],
            "closest_face": r["closest_face"],
            "tumour_volume_ml": r["tumour_volume_ml"],
            "specimen_volume_ml": r["specimen_volume_ml"],
            "tumour_sul_max": r["tumour_sul_max"],
            "ensemble_positive_fraction": r.get("ensemble_positive_fraction"),
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
    ``bone_mask``."""

    peak_definition: str = "study"
    name: ClassVar[str] = "petct"
    path_columns: ClassVar[tuple[str, ...]] = ("pet", "mask", "pet_info", "liver_mask", "bone_mask")
    required: ClassVar[tuple[str, ...]] = ("pet", "mask")
    readouts: ClassVar[tuple[str, ...]] = ("lesion_count", "sul_peak", "suv_max", "mtv_ml", "tlg")

    def options(self) -> dict[str, Any]:
        return {"peak_definition": self.peak_definition}

    def model_files(self) -> list[Path]:
        return []

    def load(self) -> Any:
        return None

    def run(self, state: Any, case: Case, out_dir: Path) -> dict[str, Any]:
        from breastseg.workflows.petct.biomarkers import compute_biomarkers
        from breastseg.workflows.petct.readout import load_pet_suv, read_mask_on, write_biomarkers

        suv, sul = load_pet_suv(case.inputs["pet"], case.inputs.get("pet_info"))
        lesions = read_mask_on(case.inputs["mask"], suv, "lesion mask")
        organs = {k: read_mask_on(case.inputs[k], suv, k.replace("_", " ")) for k in ("bone_mask", "liver_mask")
                  if k in case.inputs}  # fmt: skip
        result = compute_biomarkers(
            suv.array,
            sul.array,
            lesions,
            suv.spacing,
            organs.get("bone_mask"),
            organs.get("liver_mask"),
            self.peak_definition,  # type: ignore[arg-type]
        )
        with atomic_path(out_dir) as tmp:
            write_biomarkers(result, suv, tmp, {k: str(v) for k, v in case.inputs.items()})
        values = result.to_dict()
        return {k: values[k] for k in (*self.readouts, "pet_bone_index", "pet_liver_index")}

    def summary(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Median and interquartile range of each biomarker over the cases with a value."""
        done = [r for r in rows if r["status"] == "done"]
        out: dict[str, Any] = {}
        for key in self.readouts:
            values = sorted(float(r[key]) for r in done if r.get(key) is not None)
            if len(values) >= 2:
                q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
                out[key] = {"median": median, "q1": q1, "q3": q3, "n": len(values)}
        return out


RUNNERS: dict[str, type] = {"specimen": SpecimenRunner, "petct": PetctRunner}
