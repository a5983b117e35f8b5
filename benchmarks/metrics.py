"""HD95 and surface Dice on a 256³ pair with anisotropic spacing: breastseg against MONAI in one run.

The masks are an irregular blob and a perturbed copy (Dice ≈ 0.97, HD95 ≈ 3 mm), spacing (2.0, 0.8, 0.7) mm.
Each function is timed best-of-3 on the same inputs; the values must agree (the table says whether they do).
Run: ``.venv/bin/python benchmarks/metrics.py``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance, compute_surface_dice
from scipy import ndimage

from breastseg.evaluation.metrics import hausdorff95, surface_dice, surface_metrics
from breastseg.machine import print_header

SPACING = (2.0, 0.8, 0.7)
TOLERANCE_MM = 1.0


def mask_pair(size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    coarse = ndimage.zoom(ndimage.gaussian_filter(rng.standard_normal((size // 4,) * 3), 4), 4, order=1)
    fine = ndimage.zoom(ndimage.gaussian_filter(rng.standard_normal((size // 2,) * 3), 3), 2, order=1)
    z, y, x = np.ogrid[:size, :size, :size]
    c = size / 2
    r = np.sqrt(((z - c) / (0.35 * size)) ** 2 + ((y - c) / (0.31 * size)) ** 2 + ((x - c) / (0.39 * size)) ** 2)
    return (r + 3 * coarse) < 1, (r + 3 * coarse + 0.3 * fine) < 1.02


def best_of(fn: Callable[[], float], repeats: int = 3) -> tuple[float, float]:
    times, value = [], 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main() -> None:
    print_header(__doc__ or "metrics")
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(2)
    ref, pred = mask_pair()
    tp, tr = torch.from_numpy(pred)[None, None], torch.from_numpy(ref)[None, None]
    rows = [
        (
            "HD95 (mm)",
            best_of(lambda: hausdorff95(pred, ref, SPACING)),
            best_of(
                lambda: float(
                    compute_hausdorff_distance(tp, tr, include_background=True, percentile=95, spacing=SPACING)
                )
            ),
        ),
        (
            f"surface Dice @ {TOLERANCE_MM} mm",
            best_of(lambda: surface_dice(pred, ref, SPACING, TOLERANCE_MM)),
            best_of(
                lambda: float(
                    compute_surface_dice(
                        tp.float(), tr.float(), [TOLERANCE_MM], include_background=True, spacing=SPACING
                    )
                )
            ),
        ),
    ]
    both_s, _ = best_of(lambda: surface_metrics(pred, ref, SPACING, TOLERANCE_MM).hd95_mm)
    print(f"256³ pair, spacing {SPACING} mm, {int(ref.sum())} / {int(pred.sum())} voxels")
    header = f"{'metric':<26} {'breastseg s':>11} {'MONAI s':>9} {'speed-up':>9}"
    print(f"{header} {'breastseg value':>16} {'MONAI value':>12} same")
    for name, (ours_s, ours_v), (monai_s, monai_v) in rows:
        same = abs(ours_v - monai_v) <= 1e-5 * max(1.0, abs(monai_v))
        timing = f"{name:<26} {ours_s:>11.3f} {monai_s:>9.3f} {monai_s / ours_s:>8.1f}×"
        print(f"{timing} {ours_v:>16.6f} {monai_v:>12.6f} {same}")
    monai_total = rows[0][2][0] + rows[1][2][0]
    print(f"{'HD95 + surface Dice, one pass':<26} {both_s:>11.3f} {monai_total:>9.3f} {monai_total / both_s:>8.1f}×")


if __name__ == "__main__":
    main()
