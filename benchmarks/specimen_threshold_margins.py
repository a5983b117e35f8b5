"""Margin table of the threshold method on 20 phantom specimens, as the specimen study's Table 3.

Training: the PET-CT threshold is fitted (5 patient-grouped folds) on 2D lamellae cut from 10 phantoms
(seeds 200–209). Test: 20 other phantoms (seeds 300–319), 8 with the tumour touching the surface and 12 with
margins of 0.5–5 mm, at the default realism (noise, heterogeneous uptake, metabolic ≠ histological boundary,
wire, bed). Prints each case and the sensitivity, specificity, precision and F1 of positive-margin detection.
Run: ``.venv/bin/python benchmarks/specimen_threshold_margins.py`` (about 4 minutes).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from breastseg.evaluation.metrics import margin_confusion
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_lamellae, make_specimen_phantom, write_lamellae
from breastseg.suv import pet_info_from_mapping
from breastseg.workflows.specimen.lamellae import cases_from_manifests
from breastseg.workflows.specimen.pipeline import AssessConfig, assess_specimen
from breastseg.workflows.specimen.threshold import fit_threshold_model

TRAIN_SEEDS = range(200, 210)
TEST_MARGINS = [None] * 8 + [0.5, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0]


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        manifests = []
        for seed in TRAIN_SEEDS:
            ph = make_specimen_phantom(SpecimenPhantomConfig(seed=seed, margin_mm=[None, 1.0, 3.0][seed % 3]))
            manifests.append(write_lamellae(make_lamellae(ph, 3), Path(tmp) / f"s{seed}", f"p{seed}"))
        model = fit_threshold_model("petct", cases_from_manifests(manifests), n_folds=5, data_description="bench")
        model_path = model.save(Path(tmp) / "model.json")
        print(
            f"fitted on {len(TRAIN_SEEDS)} phantoms' lamellae: thresholds {[f.value for f in model.folds]} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        truth, predicted = [], []
        print(f"{'seed':>5} {'true margin':>12} {'true':>9} {'predicted':>10} {'measured':>9} {'ensemble +':>10}")
        for i, margin in enumerate(TEST_MARGINS):
            seed = 300 + i
            size = (30.0, 36.0, 44.0) if (margin or 0) > 3 else (26.0, 32.0, 40.0)
            ph = make_specimen_phantom(SpecimenPhantomConfig(seed=seed, margin_mm=margin, specimen_size_mm=size))
            info = pet_info_from_mapping(ph.truth["pet"], "phantom")
            r = assess_specimen(ph.images["ct"], ph.images["pet"], info, AssessConfig(model=str(model_path))).result
            truth.append(ph.truth["margin_status"] == "positive")
            predicted.append(r["margin_status"] == "positive")
            measured = "—" if r["min_margin_mm"] is None else f"{r['min_margin_mm']:.2f}"
            print(
                f"{seed:>5} {ph.truth['margin_mm']:>10.2f}mm {ph.truth['margin_status']:>9} "
                f"{r['margin_status']:>10} {measured:>9} {r['ensemble_positive_fraction']:>10.1f}"
            )
    c = margin_confusion(predicted, truth)
    print()
    print(f"threshold method (PET-CT) on {len(truth)} phantom specimens ({sum(truth)} positive):")
    print(f"  TP {c.tp}  FP {c.fp}  TN {c.tn}  FN {c.fn}")
    for name in ("sensitivity", "specificity", "precision", "f1"):
        value = getattr(c, name)
        print(f"  {name:<12} {'—' if value is None else f'{value:.2f}'}")
    print("  (specimen study, 31 NST specimens: thresholding F1 0.67, ResU-Net F1 0.84)")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
