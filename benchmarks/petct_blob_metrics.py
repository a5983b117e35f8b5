"""Lesion metrics that a blob cannot game, on whole-body phantoms: the study's 50 % rules and autoPET's volumes
(what ``petct evaluate`` reported before) beside the volume ratio, merged components and body share (after).

Four predictions per phantom patient (baseline scans, seeds 0..N-1): the reference itself, the reference grown
by one voxel (a slightly loose outline), the body (CT above -500 HU: a network that learnt "patient", not
"lesion") and nothing. The blob's old read-out — recall 1, precision n/(n+1), no false-positive volume — looks
like a good segmentation; the new columns, and the degenerate flag that makes ``petct evaluate`` warn and
``petct train`` refuse to choose its post-processing, do not.

Run: ``.venv/bin/python benchmarks/petct_blob_metrics.py [--patients 4]`` (about 20 s on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from breastseg.cli.main import main
from breastseg.io import read_image
from breastseg.machine import print_header
from breastseg.workflows.petct.evaluate import read_body, score_scan


def predictions(reference: np.ndarray, body: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "reference": reference,
        "grown 1 voxel": ndimage.binary_dilation(reference),
        "body blob": body,
        "empty": np.zeros_like(reference),
    }


def run(n_patients: int) -> None:
    print_header("lesion metrics that a blob cannot game (whole-body phantoms, baseline scans)")
    rows: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(n_patients):
            folder = Path(tmp) / f"p{seed}"
            args = ["-q", "phantom", "petct", "--out", str(folder), "--seed", str(seed)]
            with contextlib.redirect_stdout(io.StringIO()):  # the phantom's own summary table
                assert main([*args, "--ct-spacing-mm", "5", "--pet-spacing-mm", "8"]) == 0
            scan = folder / "baseline"
            reference_image = read_image(scan / "lesions.nii.gz")
            reference = reference_image.array > 0
            body = read_body(scan, reference_image)
            assert body is not None
            for name, pred in predictions(reference, body).items():
                rows.setdefault(name, []).append(score_scan(f"p{seed}", pred, reference, reference_image.spacing, body))
    print(f"{n_patients} phantom patients; per prediction, scans pooled (recall, precision) or median (the rest)\n")
    head = (
        f"{'prediction':<15} | {'recall':>6} {'precision':>9} {'FP ml':>7} {'Dice':>6} | "
        f"{'vol ratio':>9} {'merged':>6} {'body %':>7} {'flagged':>7}"
    )
    print(f"{'':<15} | {'before (the study, autoPET)':<32} | {'after (added beside them)':<33}")
    print(head)
    print("-" * len(head))
    for name, scores in rows.items():
        tp, fn, fp = (sum(getattr(s, k) for s in scores) for k in ("lesions_tp", "lesions_fn", "lesions_fp"))
        recall = tp / (tp + fn) if tp + fn else float("nan")
        precision = tp / (tp + fp) if tp + fp else float("nan")
        fp_ml = float(np.median([s.fp_volume_ml for s in scores]))
        dice = float(np.median([s.dice if s.dice is not None else np.nan for s in scores]))
        ratio = float(np.median([s.volume_ratio for s in scores if s.volume_ratio is not None]))
        merged = sum(s.merged_components for s in scores)
        share = 100 * float(np.median([s.body_fraction for s in scores]))
        flagged = sum(s.degenerate for s in scores)
        print(
            f"{name:<15} | {recall:>6.3f} {precision:>9.3f} {fp_ml:>7.1f} {dice:>6.3f} | "
            f"{ratio:>9.1f} {merged:>6d} {share:>7.2f} {flagged:>4d}/{len(scores)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=4)
    run(parser.parse_args().patients)
