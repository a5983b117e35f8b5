"""Time of the specimen report's figures on a phantom at the study's working voxel size (0.2 mm).

The specimen's two figures (three planes through the closest point; the 3D surfaces) are on ``specimen assess``'s
critical path; the 3D view's surfaces are sampled (at most ``MAX_STEPS`` marching-cubes steps along a side), and
the peer in the same run is scikit-image's marching cubes at every voxel, drawn the same way.
Run: ``.venv/bin/python benchmarks/figures.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from breastseg.machine import print_header
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom
from breastseg.report import surface3d
from breastseg.report.figures import orthogonal_slices
from breastseg.report.surface3d import write_surface_figure


def _seconds(run: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    print_header(__doc__ or "figures")
    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=3))
    ct, pet = ph.images["ct"], ph.images["pet"].resample_onto(ph.images["ct"], order=1)
    specimen, tumour = ph.images["specimen"].array > 0, ph.images["tumour"].array > 0
    centre = tuple(int(v) for v in np.argwhere(tumour).mean(axis=0))
    print(f"specimen CT {ct.shape} voxels at {ct.spacing[0]:g} mm")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        planes = _seconds(lambda: orthogonal_slices(ct, pet, specimen, tumour, centre, out / "planes.png"))
        rows.append(("specimen: three planes (CT, PET-CT)", planes, None))
        sampled = _seconds(lambda: write_surface_figure(specimen, tumour, ct.grid, out / "s.png"))
        every = max(ct.shape)  # every voxel: the peer
        full = _seconds(lambda: write_surface_figure(specimen, tumour, ct.grid, out / "f.png", max_steps=every), 1)
        rows.append((f"specimen: 3D surfaces, ≤ {surface3d.MAX_STEPS} steps a side", sampled, full))
    print(f"{'figure':<44}{'s':>8}{'peer s':>10}{'ratio':>8}")
    for name, seconds, peer in rows:
        ratio = f"{peer / seconds:.1f}×" if peer else ""
        peer_text = f"{peer:.2f}" if peer else ""
        print(f"{name:<44}{seconds:>8.2f}{peer_text:>10}{ratio:>8}")


if __name__ == "__main__":
    main()
