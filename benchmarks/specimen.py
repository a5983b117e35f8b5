"""Time of each step of ``specimen assess`` on a 300×250×200-voxel micro-CT specimen (0.1 mm; PET 0.4 mm).

The phantom is generated at 0.1 mm with the study's voxel sizes; the run uses the packaged threshold model.
Prints seconds per step and the total, at the native grid and at a 0.2 mm working spacing.
Run: ``.venv/bin/python benchmarks/specimen.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from breastseg.machine import print_header
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom
from breastseg.suv import pet_info_from_mapping
from breastseg.workflows.specimen.pipeline import AssessConfig, assess_specimen, write_assessment
from breastseg.workflows.specimen.preprocess import PreprocessConfig


def main() -> None:
    print_header(__doc__ or "specimen")
    t0 = time.perf_counter()
    # 300 × 250 × 200 voxels at 0.1 mm: a 30 × 25 × 20 mm field of view (x, y, z)
    cfg = SpecimenPhantomConfig(
        seed=0,
        ct_spacing_mm=0.1,
        pet_spacing_mm=0.4,
        specimen_size_mm=(14.0, 17.0, 24.0),
        padding_mm=3.0,
        tumour_diameter_mm=8.0,
        margin_mm=1.0,
    )
    ph = make_specimen_phantom(cfg)
    gen_s = time.perf_counter() - t0
    ct, pet = ph.images["ct"], ph.images["pet"]
    info = pet_info_from_mapping(ph.truth["pet"], "phantom")
    print(
        f"CT {ct.shape} voxels at {ct.spacing[0]} mm, PET {pet.shape} at {pet.spacing[0]} mm "
        f"(phantom generated in {gen_s:.1f} s); truth: {ph.truth['margin_status']} {ph.truth['margin_mm']:.2f} mm"
    )
    runs = {
        "native 0.1 mm": AssessConfig(),
        "working 0.2 mm": AssessConfig(preprocess=PreprocessConfig(working_spacing_mm=0.2)),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run_cfg in runs.items():
            assessment = assess_specimen(ct, pet, info, run_cfg)
            t_write = time.perf_counter()
            write_assessment(assessment, ct, Path(tmp) / name.replace(" ", "_"))
            timings = assessment.result.timings_s
            timings["write (masks, figure, report)"] = time.perf_counter() - t_write
            timings["assess + write"] = timings["total"] + timings["write (masks, figure, report)"]
            results[name] = assessment.result.to_json()
    steps = list(results["working 0.2 mm"]["timings_s"])
    print(f"{'step':<32}" + "".join(f"{name:>16}" for name in results))
    for step in steps:
        print(f"{step:<32}" + "".join(f"{r['timings_s'].get(step, 0.0):>15.2f}s" for r in results.values()))
    print(f"{'margin status':<32}" + "".join(f"{r['margin_status']:>16}" for r in results.values()))
    print(f"{'min margin (mm)':<32}" + "".join(f"{r['min_margin_mm']:>16.2f}" for r in results.values()))


if __name__ == "__main__":
    main()
