"""Margin table of the threshold method on 20 phantom specimens, as the specimen study's Table 3.

Training: the PET-CT threshold is fitted (5 patient-grouped folds) on 2D lamellae cut from 10 phantoms
(seeds 200–209). Test: 20 other phantoms (seeds 300–319), 8 with the tumour touching the surface and 12 with
margins of 0.5–5 mm, at the default realism (noise, heterogeneous uptake, metabolic ≠ histological boundary,
wire, bed). Prints each case and the sensitivity, specificity, precision and F1 of positive-margin detection.
With ``--bundle PATH`` the same phantoms also go through that Residual U-Net bundle, and both methods are compared
(voxel PR-AUC against the true tumour, margin table, exact McNemar on their statuses).
Run: ``.venv/bin/python benchmarks/specimen_threshold_margins.py [--bundle bundle.pt]`` (about 4 minutes for the
threshold alone).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np

from breastseg.evaluation.metrics import dice, margin_confusion, pr_auc
from breastseg.evaluation.stats import mcnemar_exact
from breastseg.machine import print_header
from breastseg.phantoms.base import Phantom
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_lamellae, make_specimen_phantom, write_lamellae
from breastseg.suv import pet_info_from_mapping
from breastseg.workflows.specimen.lamellae import cases_from_manifests
from breastseg.workflows.specimen.pipeline import AssessConfig, assess_specimen
from breastseg.workflows.specimen.threshold import ThresholdModel, case_predictions, fit_threshold_model

TRAIN_SEEDS = range(200, 210)
TEST_MARGINS = [None] * 8 + [0.5, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0]


def _table(name: str, predicted: list[bool], truth: list[bool], auc: list[float]) -> None:
    c = margin_confusion(predicted, truth)
    print(f"{name}: TP {c.tp}  FP {c.fp}  TN {c.tn}  FN {c.fn}   voxel PR-AUC {np.mean(auc):.3f} ± {np.std(auc):.3f}")
    for metric in ("sensitivity", "specificity", "precision", "f1"):
        value = getattr(c, metric)
        print(f"  {metric:<12} {'—' if value is None else f'{value:.2f}'}")


def _lamella_dice(ph: Phantom, model: ThresholdModel, span: Literal["tumour", "specimen"], folder: Path) -> float:
    """The threshold's DSC on a phantom's own lamellae (pooled over its slices, unknown pixels left out), with the
    median of the fold thresholds: the study's Table 2 on held-out patients."""
    manifest = write_lamellae(make_lamellae(ph, 3, span=span), folder, "test")
    (case,) = cases_from_manifests([manifest])
    threshold = float(np.median([f.value for f in model.folds]))
    predicted, truth = [], []
    for (mask, _), label in zip(case_predictions(model.input, case, threshold), case.label, strict=True):
        known = np.asarray(label) != case.unknown_label
        predicted.append(mask[known])
        truth.append(np.asarray(label)[known] == 1)
    return dice(np.concatenate(predicted), np.concatenate(truth))


def main() -> None:
    print_header(__doc__ or "specimen_threshold_margins")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None, help="also evaluate this ResU-Net bundle")
    parser.add_argument(
        "--phantom-version",
        type=int,
        default=1,
        help="specimen phantom generator (2: with benign FDG-avid tissue, lamellae bread-loafed; 3: and a biopsy track "
        "that a threshold follows to the surface)",
    )
    args = parser.parse_args()
    version = args.phantom_version
    span: Literal["tumour", "specimen"] = "specimen" if version >= 2 else "tumour"
    print(f"phantom version {version}, lamellae through the {span}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        manifests = []
        for seed in TRAIN_SEEDS:
            cfg = SpecimenPhantomConfig(seed=seed, margin_mm=[None, 1.0, 3.0][seed % 3], version=version)
            lamellae = make_lamellae(make_specimen_phantom(cfg), 3, span=span)
            manifests.append(write_lamellae(lamellae, Path(tmp) / f"s{seed}", f"p{seed}"))
        model = fit_threshold_model("petct", cases_from_manifests(manifests), n_folds=5, data_description="bench")
        model_path = model.save(Path(tmp) / "model.json")
        print(
            f"fitted on {len(TRAIN_SEEDS)} phantoms' lamellae: thresholds {[f.value for f in model.folds]} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        methods = {"threshold": AssessConfig(model=str(model_path))}
        if args.bundle:
            methods["resunet"] = AssessConfig(method="resunet", model=args.bundle)
        truth: list[bool] = []
        calls: dict[str, list[bool]] = {m: [] for m in methods}
        aucs: dict[str, list[float]] = {m: [] for m in methods}
        test_dice: list[float] = []
        print(f"{'seed':>5} {'true margin':>12} {'true':>9} " + "".join(f"{m:>22}" for m in methods))
        for i, margin in enumerate(TEST_MARGINS):
            seed = 300 + i
            size = (30.0, 36.0, 44.0) if (margin or 0) > 3 else (26.0, 32.0, 40.0)
            cfg = SpecimenPhantomConfig(seed=seed, margin_mm=margin, specimen_size_mm=size, version=version)
            ph = make_specimen_phantom(cfg)
            info = pet_info_from_mapping(ph.truth["pet"], "phantom")
            test_dice.append(_lamella_dice(ph, model, span, Path(tmp) / f"t{seed}"))
            truth.append(ph.truth["margin_status"] == "positive")
            cells = []
            for name, cfg in methods.items():
                a = assess_specimen(ph.images["ct"], ph.images["pet"], info, cfg)
                r = a.result.to_json()
                calls[name].append(r["margin_status"] == "positive")
                true_tumour = ph.images["tumour"].array[a.pair.crop] > 0
                aucs[name].append(pr_auc(a.probability[a.pair.tissue], true_tumour[a.pair.tissue]))
                measured = "—" if r["min_margin_mm"] is None else f"{r['min_margin_mm']:.2f}"
                share = 100 * r["ensemble_positive_fraction"]
                cells.append(f"{r['margin_status']:>9} {measured:>5} ({share:.0f}%)")
            print(
                f"{seed:>5} {ph.truth['margin_mm']:>10.2f}mm {ph.truth['margin_status']:>9} "
                + "".join(f"{c:>22}" for c in cells)
            )
    print()
    print(
        f"threshold (median of the folds) on the test phantoms' own lamellae: DSC {np.mean(test_dice):.2f} ± "
        f"{np.std(test_dice):.2f} over {len(test_dice)} patients (specimen study, Table 2: PET-CT thresholding "
        "0.69 ± 0.19)"
    )
    print(f"{len(truth)} phantom specimens ({sum(truth)} positive):")
    for name in methods:
        _table(name, calls[name], truth, aucs[name])
    if "resunet" in methods:
        p_value = mcnemar_exact(calls["resunet"], calls["threshold"]).p_value
        print(f"exact McNemar, ResU-Net vs threshold statuses: p = {p_value:.4f}")
    print("(specimen study, 31 NST specimens: thresholding F1 0.67, ResU-Net F1 0.84)")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
