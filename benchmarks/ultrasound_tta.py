"""Left-right flip test-time augmentation on a cross-validation's fold models: Dice gained, time paid.

Re-scores every fold model of a ``breastseg ultrasound train`` folder on its own test fold, once without and
once with the flip (the default of ``ultrasound predict``), and prints per fold the mean per-image Dice of the
lesion images, the false-positive images among normals and the seconds per image, with the paired Wilcoxon test
over all lesion images. The no-flip run is the peer the ratio is taken against.

Run (after the CV in docs/results/ultrasound.md):
``.venv/bin/python benchmarks/ultrasound_tta.py --data ../shared/data/busi --cv build/us-cv/resunet192``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from breastseg.machine import print_header
from breastseg.workflows.ultrasound.crossval import ImageScore, fold_cases, score_fold, summarise_cv
from breastseg.workflows.ultrasound.dataset import read_dataset
from breastseg.workflows.ultrasound.model import UltrasoundModel
from breastseg.workflows.ultrasound.predict import compare_models
from breastseg.workflows.ultrasound.split import read_split_folds


def main() -> None:
    print_header(__doc__ or "ultrasound_tta")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the dataset the CV ran on")
    parser.add_argument("--cv", type=Path, required=True, help="the CV folder (fold<k>.pt)")
    parser.add_argument("--split", type=Path, default=Path("src/breastseg/workflows/ultrasound/busi_5fold_split.json"))
    args = parser.parse_args()
    cases = read_dataset(args.data)
    folds = read_split_folds(args.split)
    runs: dict[bool, list[ImageScore]] = {False: [], True: []}
    print("| fold | images | Dice no flip | Dice flip | s/image no flip | s/image flip | time ratio |")
    print("|---|---|---|---|---|---|---|")
    for k in range(len(folds)):
        model = UltrasoundModel.load(args.cv / f"fold{k}.pt")
        _, _, test = fold_cases(cases, folds, k)
        dice, secs = {}, {}
        for flip in (False, True):
            t0 = time.perf_counter()
            scores = score_fold(model, test, k, flip)
            secs[flip] = (time.perf_counter() - t0) / len(test)
            dice[flip] = float(np.mean([s.dice for s in scores if s.dice is not None]))
            runs[flip] += scores
        print(
            f"| {k} | {len(test)} | {dice[False]:.3f} | {dice[True]:.3f} | {secs[False]:.3f} | {secs[True]:.3f} "
            f"| {secs[True] / secs[False]:.2f}× |"
        )
    for flip in (False, True):
        summary = summarise_cv(runs[flip])
        d = summary["lesion"]["per_image"]["dice"]
        normal = summary.get("normal", {})
        print(
            f"{'flip' if flip else 'no flip'}: lesion Dice {d['mean']:.3f} ± {d['sd']:.3f} (median {d['median']:.3f}), "
            f"benign {summary['benign']['per_image']['dice']['mean']:.3f}, "
            f"malignant {summary['malignant']['per_image']['dice']['mean']:.3f}, pooled "
            f"{summary['lesion']['pooled']['dice']:.3f}; normals with false positives "
            f"{normal.get('images_with_false_positives')}/{normal.get('images')}, FP area "
            f"{100 * normal['false_positive_fraction_of_image']['mean']:.2f} %"
        )
    test = compare_models(runs[True], runs[False])["dice"]
    print(f"paired Wilcoxon, flip vs no flip (per-image Dice): p = {test['wilcoxon_p']:.3g}")


if __name__ == "__main__":
    main()
