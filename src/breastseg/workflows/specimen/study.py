"""The specimen study's evaluation protocol, end to end (Maris et al. 2025, Methods and Results).

1. **Segmentation (Table 2, Fig. 3)** — NST lamellae, per input (CT, PET, PET-CT): stratified group nested
   cross-validation. For each of the ``outer`` test folds, an Optuna search on its ``inner`` folds picks the
   hyper-parameters; the best trial's ``inner`` models form the fold's ensemble (mean probability), which
   predicts the fold's test patients. The intensity threshold is fitted on the same test fold's remaining
   patients (one per test fold, not nested). Per-patient DSC, PR-AUC, 95HD and 1 mm contour Dice; paired
   Wilcoxon signed-rank between the methods per input and metric, Bonferroni–Holm over the metrics (m = 4).
2. **Margins (Tables 3, 4)** — the 3D specimens with PET-CT input: all ``outer × inner`` networks (25) or
   ``outer`` thresholds (5) as ensembles, leaving out every model that saw the specimen's patient (the
   leakage guard); sensitivity, specificity, precision and F1 of positive-margin detection; exact McNemar
   tests on which specimens each strategy got right, Holm over the comparisons.

Everything a run produces is kept under its output folder: the fold bundles, the thresholds, the Optuna
studies, per-patient and per-specimen rows, so an interrupted run resumes at the first unfinished fold and
every number in the tables can be traced to its case.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from breastseg._version import __version__
from breastseg.errors import InputError, MissingExtra
from breastseg.evaluation.metrics import SliceCase, margin_confusion, patient_metrics, pr_auc
from breastseg.evaluation.stats import holm, mcnemar_exact, wilcoxon
from breastseg.io import read_image
from breastseg.learn.splits import OuterFold, nested_folds
from breastseg.learn.trainer import TrainResult
from breastseg.nets.resunet import ResUNetConfig
from breastseg.predict.slices import predict_slice
from breastseg.sanity import NotAssessable
from breastseg.workflows.specimen.bundle import BundleMember, ModelBundle, combine_bundles
from breastseg.workflows.specimen.cohort import SpecimenCase
from breastseg.workflows.specimen.lamellae import LamellaSlice, cases_from_slices
from breastseg.workflows.specimen.normalisation import CHANNEL_SETS, fit_normalisation
from breastseg.workflows.specimen.pipeline import AssessConfig, assess_specimen, load_specimen
from breastseg.workflows.specimen.search import (
    SearchSpace,
    best_configuration,
    run_search,
    storage_url,
    train_inner_fold,
)
from breastseg.workflows.specimen.threshold import (
    FittedThreshold,
    ThresholdInput,
    ThresholdModel,
    case_predictions,
    fit_threshold,
)
from breastseg.workflows.specimen.train import to_train_images, training_pixel_spacing

try:
    import optuna
except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
    raise MissingExtra("search", "optuna") from exc

METHODS = ("threshold", "resunet")
METRICS = ("dice", "pr_auc", "hd95_mm", "surface_dice")
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class StudyConfig:
    """The protocol's settings. Defaults finish on a CPU; the study: 100 trials × 150 epochs, study space."""

    inputs: tuple[str, ...] = ("ct", "pet", "petct")
    outer: int = 5
    inner: int = 5
    trials: int = 3
    epochs: int = 15
    space: str = "small"
    storage: str | None = None
    seed: int = 0
    margin_input: str = "petct"
    tumour_types: tuple[str, ...] = ("NST",)
    alpha: float = 0.05

    def __post_init__(self) -> None:
        unknown = [i for i in (*self.inputs, self.margin_input) if i not in CHANNEL_SETS]
        if unknown:
            raise InputError(f"unknown input(s) {unknown}; choose from {sorted(CHANNEL_SETS)}")
        if self.space not in ("study", "small"):
            raise InputError(f"space must be 'study' or 'small', got {self.space!r}")

    def search_space(self) -> SearchSpace:
        return SearchSpace.small() if self.space == "small" else SearchSpace.study()


def steps(cfg: StudyConfig, n_specimens: int) -> int:
    """Units of work for a progress bar: one per (input, test fold), one per specimen."""
    inputs = set(cfg.inputs) | ({cfg.margin_input} if n_specimens else set())
    return len(inputs) * cfg.outer + n_specimens


# ---------------------------------------------------------------------------------------------------
# one test fold
# ---------------------------------------------------------------------------------------------------
def _fold_bundle(
    inputs: str,
    k: int,
    fold: OuterFold,
    slices: Sequence[LamellaSlice],
    cfg: StudyConfig,
    out: Path,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Search on the fold's inner folds and bundle the best trial's inner models (loaded if already done)."""
    path = out / "models" / inputs / f"fold{k}.pt"
    if path.exists():
        bundle = ModelBundle.load(path)
        return bundle, dict(bundle.card.get("search", {}))
    test = set(fold.test)
    pool = [s for s in slices if s.patient_id not in test]
    norm = fit_normalisation(inputs, [s.ct for s in pool], [s.tissue for s in pool])
    images = to_train_images(pool, norm)
    kept: dict[int, dict[int, tuple[ResUNetConfig, TrainResult]]] = {}

    def keep(trial: int, inner: int, net: ResUNetConfig, result: TrainResult) -> None:
        kept.setdefault(trial, {})[inner] = (net, result)

    storage = cfg.storage or str(out / "optuna.db")
    name = f"specimen-{inputs}-fold{k}-seed{cfg.seed}"
    space = cfg.search_space()
    existing = _complete_trials(storage, name)
    study = run_search(
        images,
        fold.inner,
        storage=storage,
        study_name=name,
        n_trials=max(0, cfg.trials - existing),
        epochs=cfg.epochs,
        space=space,
        seed=cfg.seed,
        on_model=keep,
    )
    best = study.best_trial
    models = kept.get(best.number, {})
    if len(models) < len(fold.inner):  # the best trial ran elsewhere (shared storage) or before a restart
        net, train_cfg = best_configuration(study, space, len(norm.channels), cfg.epochs, cfg.seed + best.number)
        for j, inner in enumerate(fold.inner):
            if j not in models:
                models[j] = (net, train_inner_fold(net, images, inner, train_cfg))
    net_cfg = models[0][0]
    members = [
        BundleMember(
            models[j][1].state_dict,
            tuple(inner.train),
            tuple(inner.validation),
            f"test{k}-inner{j}",
            models[j][1].best_validation_dice,
        )
        for j, inner in enumerate(fold.inner)
    ]
    search = {
        "study": name,
        "storage": storage_url(storage).split("@")[-1],  # no credentials in the record
        "trials_complete": len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
    }
    card = {
        "model": f"Residual U-Net ({inputs}), test fold {k} of the nested cross-validation",
        "inputs": inputs,
        "trained": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "breastseg_version": __version__,
        "data": "specimen study cohort",
        "patients": sorted({s.patient_id for s in pool}),
        "test_patients": list(fold.test),
        "tumour_types": sorted({s.tumour_type for s in pool}),
        "n_slices": len(pool),
        "members": len(members),
        "search": search,
        "intended_use": "research (study reproduction)",
    }
    bundle = ModelBundle(net_cfg, norm, members, card, training_pixel_spacing(pool))
    bundle.save(path)
    return bundle, search


def _complete_trials(storage: str, name: str) -> int:
    try:
        study = optuna.load_study(study_name=name, storage=storage_url(storage))
    except KeyError:
        return 0
    return len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])


def _by_patient(slices: Sequence[LamellaSlice]) -> dict[str, list[LamellaSlice]]:
    out: dict[str, list[LamellaSlice]] = {}
    for s in slices:
        out.setdefault(s.patient_id, []).append(s)
    return out


def _metric_row(inputs: str, method: str, k: int, patient: str, m: dict[str, Any]) -> dict[str, Any]:
    return {
        "input": inputs,
        "method": method,
        "test_fold": k,
        "patient_id": patient,
        **{name: m.get(name) for name in METRICS},
        "n_slices": m["n_slices"],
    }


def evaluate_fold(
    inputs: str,
    k: int,
    test_slices: Sequence[LamellaSlice],
    bundle: ModelBundle,
    threshold: FittedThreshold,
) -> list[dict[str, Any]]:
    """Per-patient metrics of both methods on the test fold's patients (unknown pixels excluded)."""
    ensemble = bundle.ensemble()
    nets = [e.net for e in ensemble]
    multiple = ensemble[0].size_multiple
    rows = []
    kind: ThresholdInput = "ct" if inputs == "ct" else "pet" if inputs == "pet" else "petct"
    for patient, mine in sorted(_by_patient(test_slices).items()):
        images = to_train_images(mine, bundle.normalisation)
        net_cases = []
        for s, img in zip(mine, images, strict=True):
            prob = np.where(s.tissue, predict_slice(nets, img.channels, multiple), 0.0)
            net_cases.append(SliceCase(prob >= 0.5, s.label == 1, s.spacing, prob, s.label == 2))
        rows.append(_metric_row(inputs, "resunet", k, patient, patient_metrics(net_cases)))
        (case,) = cases_from_slices(mine)
        thr_cases = [
            SliceCase(mask, s.label == 1, s.spacing, prob, s.label == 2)
            for s, (mask, prob) in zip(mine, case_predictions(kind, case, threshold.value), strict=True)
        ]
        rows.append(_metric_row(inputs, "threshold", k, patient, patient_metrics(thr_cases)))
    return rows


# ---------------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------------
def segmentation_table(rows: Sequence[dict[str, Any]], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Table 2: per input and metric, mean ± SD of each method over patients, Wilcoxon p, Holm over metrics.

    A patient enters a metric's test only when both methods have a value (95HD is undefined when a method
    predicts nothing on every slice); ``n`` says how many did.
    """
    table = []
    for inputs in dict.fromkeys(r["input"] for r in rows):
        mine = [r for r in rows if r["input"] == inputs]
        by = {m: {r["patient_id"]: r for r in mine if r["method"] == m} for m in METHODS}
        patients = sorted(set(by["threshold"]) & set(by["resunet"]))
        entries = []
        for metric in METRICS:
            pairs = [
                (by["threshold"][p][metric], by["resunet"][p][metric])
                for p in patients
                if by["threshold"][p][metric] is not None and by["resunet"][p][metric] is not None
            ]
            a = np.array([x for x, _ in pairs], float)
            b = np.array([y for _, y in pairs], float)
            p_value = wilcoxon(a.tolist(), b.tolist()).p_value if len(pairs) >= 2 else float("nan")
            entries.append(
                {
                    "input": inputs,
                    "metric": metric,
                    "n": len(pairs),
                    "threshold_mean": float(a.mean()) if a.size else None,
                    "threshold_sd": float(a.std(ddof=1)) if a.size > 1 else None,
                    "resunet_mean": float(b.mean()) if b.size else None,
                    "resunet_sd": float(b.std(ddof=1)) if b.size > 1 else None,
                    "p_value": p_value,
                }
            )
        tested = [e for e in entries if np.isfinite(e["p_value"])]
        if tested:
            adjusted, reject = holm([e["p_value"] for e in tested], alpha)
            for e, adj, rej in zip(tested, adjusted, reject, strict=True):
                e["p_holm"], e["significant"] = float(adj), bool(rej)
        for e in entries:
            e.setdefault("p_holm", None)
            e.setdefault("significant", False)
        table.extend(entries)
    return table


def margin_tables(
    rows: Sequence[dict[str, Any]], alpha: float = 0.05
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tables 3 and 4 from per-specimen rows: detection scores per strategy; McNemar on correctness + Holm.

    A specimen a strategy found not assessable (``<method>_positive`` ``None``) is left out of that strategy's
    detection scores, counted in its ``not_assessable``, and is not a correct read for McNemar."""
    truth = [bool(r["true_positive_margin"]) for r in rows]
    table3 = []
    correct: dict[str, list[bool]] = {}
    for method in METHODS:
        calls = [r.get(f"{method}_positive") for r in rows]
        answered = [(bool(x), t) for x, t in zip(calls, truth, strict=True) if x is not None]
        c = margin_confusion([x for x, _ in answered], [t for _, t in answered])
        correct[method] = [x is not None and bool(x) == t for x, t in zip(calls, truth, strict=True)]
        table3.append(
            {
                "method": method,
                **c.as_dict(),
                "n": len(rows),
                "n_positive": sum(truth),
                "not_assessable": len(rows) - len(answered),
            }
        )
    pairs = [("resunet", "threshold")]
    table4: list[dict[str, Any]] = []
    for a, b in pairs:
        res = mcnemar_exact(correct[a], correct[b])
        table4.append(
            {
                "comparison": f"{a} vs {b}",
                "only_a_correct": res.only_a,
                "only_b_correct": res.only_b,
                "p_value": res.p_value,
            }
        )
    adjusted, reject = holm([float(t["p_value"]) for t in table4], alpha)
    for t, adj, rej in zip(table4, adjusted, reject, strict=True):
        t["p_holm"], t["significant"], t["m"] = float(adj), bool(rej), len(table4)
    return table3, table4


# ---------------------------------------------------------------------------------------------------
# margins on 3D specimens
# ---------------------------------------------------------------------------------------------------
def assess_cases(
    cases: Sequence[SpecimenCase],
    bundle_path: Path,
    threshold_path: Path,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Both strategies on every specimen, each leaving out the models that saw the specimen's patient."""
    rows = []
    for case in cases:
        if progress is not None:
            progress(f"margins: {case.case_id}")
        ct, pet, info = load_specimen(case.ct, case.pet, case.pet_info)
        truth_mask = read_image(case.tumour).array > 0 if case.tumour else None
        row: dict[str, Any] = {
            "case_id": case.case_id,
            "patient_id": case.patient_id,
            "true_margin_mm": case.margin_mm,
            "true_positive_margin": case.positive,
        }
        for method, path in (("threshold", threshold_path), ("resunet", bundle_path)):
            cfg = AssessConfig(
                method="resunet" if method == "resunet" else "threshold", model=str(path), patient_id=case.patient_id
            )
            row[f"{method}_not_assessable"] = None
            try:
                a = assess_specimen(ct, pet, info, cfg)
            except NotAssessable as exc:  # e.g. a tumour drawn out to the image's edge: no margin, not "negative"
                row.update({f"{method}_{k}": None for k in ("positive", "margin_mm", "models_used", "seconds")})
                row[f"{method}_not_assessable"] = str(exc)
                if truth_mask is not None:
                    row[f"{method}_pr_auc"] = None
                continue
            r = a.result
            row[f"{method}_positive"] = r.positive
            row[f"{method}_margin_mm"] = r.margin.min_margin_mm
            row[f"{method}_models_used"] = r.model.get("members_used", r.model.get("folds_used"))
            row[f"{method}_seconds"] = r.timings_s["total"]
            if truth_mask is not None and truth_mask.shape == ct.shape:
                row[f"{method}_pr_auc"] = pr_auc(a.probability[a.pair.tissue], truth_mask[a.pair.crop][a.pair.tissue])
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------
# the whole protocol
# ---------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class StudyResult:
    config: StudyConfig
    folds: list[OuterFold]
    patient_rows: list[dict[str, Any]]
    specimen_rows: list[dict[str, Any]]
    table2: list[dict[str, Any]]
    table3: list[dict[str, Any]]
    table4: list[dict[str, Any]]
    searches: dict[str, list[dict[str, Any]]]
    seconds: dict[str, float]
    models: dict[str, str]


def run_study(
    slices: Sequence[LamellaSlice],
    specimens: Sequence[SpecimenCase],
    out_dir: str | Path,
    cfg: StudyConfig | None = None,
    progress: Progress | None = None,
) -> StudyResult:
    """Run the protocol (module docstring) on lamella slices and 3D specimens; models go under ``out_dir``."""
    cfg = cfg or StudyConfig()
    say: Progress = progress or (lambda _text, _advance: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in slices if s.tumour_type in cfg.tumour_types]
    types = {s.patient_id: s.tumour_type for s in chosen}
    if len(types) < cfg.outer:
        raise InputError(f"{len(types)} {'/'.join(cfg.tumour_types)} patients cannot fill {cfg.outer} test folds")
    folds = nested_folds(types, cfg.outer, cfg.inner, cfg.seed)
    seconds: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    searches: dict[str, list[dict[str, Any]]] = {}
    bundles: dict[str, list[ModelBundle]] = {}
    thresholds: dict[str, list[FittedThreshold]] = {}
    by_patient = _by_patient(chosen)
    for inputs in dict.fromkeys((*cfg.inputs, *([cfg.margin_input] if specimens else []))):
        t0 = time.perf_counter()
        kind: ThresholdInput = "ct" if inputs == "ct" else "pet" if inputs == "pet" else "petct"
        for k, fold in enumerate(folds):
            say(f"{inputs}: test fold {k + 1}/{len(folds)} (search, train, test)", 0)
            bundle, search = _fold_bundle(inputs, k, fold, chosen, cfg, out)
            bundles.setdefault(inputs, []).append(bundle)
            searches.setdefault(inputs, []).append(search)
            pool = [s for s in chosen if s.patient_id not in set(fold.test)]
            fitted = fit_threshold(kind, cases_from_slices(pool))
            thresholds.setdefault(inputs, []).append(fitted)
            if inputs in cfg.inputs:
                test = [s for p in fold.test for s in by_patient[p]]
                rows.extend(evaluate_fold(inputs, k, test, bundle, fitted))
            say(f"{inputs}: test fold {k + 1}/{len(folds)} done", 1)
        seconds[f"cross-validation {inputs}"] = round(time.perf_counter() - t0, 1)
    models: dict[str, str] = {}
    for inputs, fitted_list in thresholds.items():
        kind = "ct" if inputs == "ct" else "pet" if inputs == "pet" else "petct"
        model = ThresholdModel(
            kind,
            fitted_list,
            cfg.tumour_types,
            {
                "model": f"intensity threshold ({inputs}), one per test fold of the study protocol",
                "breastseg_version": __version__,
                "data": "specimen study cohort",
                "training_patients": sorted(types),
            },
        )
        models[f"threshold {inputs}"] = str(model.save(out / "models" / inputs / "thresholds.json"))
    specimen_rows: list[dict[str, Any]] = []
    table3: list[dict[str, Any]] = []
    table4: list[dict[str, Any]] = []
    if specimens:
        t0 = time.perf_counter()
        inputs = cfg.margin_input
        combined = combine_bundles(
            bundles[inputs],
            {
                "model": f"Residual U-Net ({inputs}) ensemble of {cfg.outer} × {cfg.inner} nested-CV models",
                "inputs": inputs,
                "breastseg_version": __version__,
                "data": "specimen study cohort",
                "patients": sorted(types),
                "tumour_types": list(cfg.tumour_types),
                "members": sum(len(b.members) for b in bundles[inputs]),
                "intended_use": "research (study reproduction)",
            },
        )
        bundle_path = combined.save(out / "models" / f"resunet_{inputs}_ensemble.pt")
        models[f"resunet {inputs} ensemble"] = str(bundle_path)
        specimen_rows = assess_cases(
            specimens,
            bundle_path,
            Path(models[f"threshold {inputs}"]),
            progress=lambda text: say(text, 1),
        )
        table3, table4 = margin_tables(specimen_rows, cfg.alpha)
        seconds["margins"] = round(time.perf_counter() - t0, 1)
    return StudyResult(
        config=cfg,
        folds=folds,
        patient_rows=rows,
        specimen_rows=specimen_rows,
        table2=segmentation_table(rows, cfg.alpha) if rows else [],
        table3=table3,
        table4=table4,
        searches=searches,
        seconds=seconds,
        models=models,
    )


def study_document(result: StudyResult) -> dict[str, Any]:
    """Everything about a run that is not a table row: configuration, splits, searches, timings, models."""
    return json.loads(
        json.dumps(
            {
                "kind": "breastseg.specimen.study",
                "breastseg_version": __version__,
                "config": dataclasses.asdict(result.config),
                "splits": [dataclasses.asdict(f) for f in result.folds],
                "searches": result.searches,
                "seconds": result.seconds,
                "models": result.models,
            },
            default=str,
        )
    )
