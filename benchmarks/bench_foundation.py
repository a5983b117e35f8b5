"""Foundation timings: DICOM series reading, PET→CT third-order resampling, phantom generation.

Each row times breastseg against a peer measured in the same run on the same data and prints the ratio
(peer time / ours: > 1 means breastseg is faster). Run with ``.venv/bin/python benchmarks/bench_foundation.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from breastseg.image import Grid, Image
from breastseg.io import read_image, write_dicom_series
from breastseg.machine import print_header
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_dicom_read(tmp: Path) -> tuple[str, float, str, float]:
    rng = np.random.default_rng(0)
    ct = Image(rng.normal(0, 200, size=(200, 250, 300)).astype(np.float32), (0.1, 0.1, 0.1), modality="CT")
    write_dicom_series(ct, tmp / "ct")

    def gdcm() -> None:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp / "ct")))
        reader.Execute()

    return (
        "read 200-slice CT series (300×250)",
        best_of(lambda: read_image(tmp / "ct")),
        "SimpleITK/GDCM ImageSeriesReader",
        best_of(gdcm),
    )


def bench_pet_to_ct() -> tuple[str, float, str, float]:
    ct_grid = Grid((200, 250, 300), (0.1, 0.1, 0.1), (0.0, 0.0, 0.0), np.eye(3))
    pet_grid = ct_grid.with_spacing(0.4)
    pet = Image(
        np.random.default_rng(1).gamma(2.0, 1.0, pet_grid.shape).astype(np.float32), pet_grid.spacing, pet_grid.origin
    )

    def scipy_peer() -> None:
        # same mapping: CT voxel index → PET continuous index, cubic spline with prefilter
        scale = np.asarray(ct_grid.spacing) / np.asarray(pet_grid.spacing)
        offset = (np.asarray(ct_grid.origin[::-1]) - np.asarray(pet_grid.origin[::-1])) / np.asarray(pet_grid.spacing)
        ndimage.affine_transform(pet.array, scale, offset=offset, output_shape=ct_grid.shape, order=3, mode="constant")

    return (
        "PET (0.4 mm) → CT grid (0.1 mm, 15 M voxels), order 3",
        best_of(lambda: pet.resample_onto(ct_grid, order=3), 2),
        "scipy.ndimage.affine_transform order 3",
        best_of(scipy_peer, 1),
    )


def main() -> None:
    print_header(__doc__ or "bench_foundation")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(bench_dicom_read(Path(tmp)))
    rows.append(bench_pet_to_ct())
    t_phantom = best_of(lambda: make_specimen_phantom(SpecimenPhantomConfig(seed=0)), 1)

    print(f"{'task':<55} {'breastseg s':>12} {'peer':<40} {'peer s':>8} {'ratio':>6}")
    for task, ours, peer, theirs in rows:
        print(f"{task:<55} {ours:>12.2f} {peer:<40} {theirs:>8.2f} {theirs / ours:>6.1f}")
    print(f"{'specimen phantom, default (160×200×230 CT at 0.2 mm)':<55} {t_phantom:>12.2f} {'(no peer)':<40}")


if __name__ == "__main__":
    main()
