"""SULpeak on a whole-body-sized PET: the sparse spherical convolution against a dense one.

A 200 × 200 × 300-voxel PET (4.07 × 4.07 × 3.27 mm, the study's scanner class) with 30 spherical lesions of
5–25 mm radius and heterogeneous uptake. Times ``breastseg.workflows.petct.biomarkers`` — SULpeak alone
(study definition), and all biomarkers — against the peer a user would write first: SciPy's dense
``ndimage.correlate`` of the whole volume with the same partial-voxel kernel (normalised for the border the
same way), then the maximum over the lesion voxels. Prints seconds, the speed-up and the largest difference.

Run: ``.venv/bin/python benchmarks/sulpeak.py``
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage

from breastseg.machine import print_header
from breastseg.workflows.petct.biomarkers import compute_biomarkers, peak, sphere_kernel

SPACING = (3.27, 4.07, 4.07)
SHAPE = (300, 200, 200)


def phantom(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sul = rng.gamma(4.0, 0.25, size=SHAPE).astype(np.float32)  # background around 1 SUL, noisy
    lesions = np.zeros(SHAPE, bool)
    for _ in range(30):
        r = rng.uniform(5, 25)
        c = [rng.uniform(30, n * s - 30) for n, s in zip(SHAPE, SPACING, strict=True)]
        box = tuple(
            slice(max(0, int((ci - r) / s) - 1), min(n, int((ci + r) / s) + 2))
            for ci, s, n in zip(c, SPACING, SHAPE, strict=True)
        )
        grids = np.meshgrid(*[np.arange(b.start, b.stop) * s for b, s in zip(box, SPACING, strict=True)], indexing="ij")
        ball = sum((g - ci) ** 2 for g, ci in zip(grids, c, strict=True)) <= r * r
        lesions[box] |= ball
        sul[box][ball] += rng.uniform(2, 10) * rng.uniform(0.7, 1.0, size=int(ball.sum()))
    return sul, lesions


def dense_peak(sul: np.ndarray, lesions: np.ndarray) -> float:
    kernel = sphere_kernel(SPACING, 12.0)
    total = ndimage.correlate(sul.astype(np.float64), kernel, mode="constant", cval=0.0)
    weight = ndimage.correlate(np.ones(sul.shape), kernel, mode="constant", cval=0.0)
    return float((total / weight)[lesions].max())


def main() -> None:
    print_header(__doc__ or "sulpeak")
    sul, lesions = phantom()
    print(f"PET {SHAPE} voxels, {SPACING} mm; {int(lesions.sum())} lesion voxels")
    t0 = time.perf_counter()
    sparse = peak(sul, lesions, SPACING, "study")
    t_sparse = time.perf_counter() - t0
    t0 = time.perf_counter()
    all_markers = compute_biomarkers(sul, sul, lesions, SPACING)
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    dense = dense_peak(sul, lesions)
    t_dense = time.perf_counter() - t0
    assert sparse is not None
    print("| method | s | SULpeak |")
    print("|---|---|---|")
    print(f"| breastseg peak (sparse spherical convolution) | {t_sparse:.3f} | {sparse.value:.4f} |")
    n = all_markers.lesion_count
    print(f"| breastseg all biomarkers ({n} lesions) | {t_all:.3f} | {all_markers.sul_peak:.4f} |")
    print(f"| SciPy dense ndimage.correlate | {t_dense:.3f} | {dense:.4f} |")
    difference = abs(dense - sparse.value)
    print(f"speed-up of the SULpeak over the dense peer: {t_dense / t_sparse:.1f}×; |difference| {difference:.2e}")


if __name__ == "__main__":
    main()
