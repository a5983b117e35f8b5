"""How close the specimen read-out's minimum margin comes to the truth, with its interval's coverage, per case.

Held-out phantoms (seeds 400…, default realism, margins 0–5 mm: two positive, then 0.5, 1, 1.5, 2, 2.5, 3, 4,
5 mm) go through ``assess_specimen`` exactly as ``breastseg specimen assess`` runs it (tri-planar, default slice
step and precision) with the given ResU-Net bundle (default: the packaged demo bundle) and, for comparison, the
packaged PET-CT threshold. Printed per case: the true margin (the phantom's, on the CT grid), each method's
margin, its error, its interval (lower end: the tumour drawn at probability ≥ 0.3, for the threshold its lowest
fold threshold; upper end: the PET's contrast midpoint, the level halfway from the surrounding tissue to the
maximum, or for the ResU-Net its tumour at ≥ 0.7 where that lies farther) and whether that covers the truth, and
the status; then per method the mean absolute error, the bias (mean signed error;
negative: read too close to the surface), the interval's coverage and the statuses right.

Run: ``.venv/bin/python benchmarks/specimen_margin_accuracy.py [--bundle B.pt] [--methods threshold] [--seeds 400 401 …]
[--set version=2 placement=translated …] [--median-kernel-mm 0.1]`` (≈ 10 s per phantom to generate, 12–15 s
for the packaged ResU-Net, 4 s for the threshold on a 2-core AVX2 EPYC).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from breastseg.machine import print_header
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom
from breastseg.suv import pet_info_from_mapping
from breastseg.workflows.specimen.pipeline import AssessConfig, assess_specimen, load_resunet
from breastseg.workflows.specimen.preprocess import PreprocessConfig

MARGINS_MM: tuple[float | None, ...] = (None, None, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)


def covered(interval: list[float | None] | None, truth: float, tolerance: float) -> bool:
    """Whether ``interval`` (upper end ``None``: open) contains ``truth`` within ``tolerance`` mm (a voxel: the
    margins are whole voxels on the grid)."""
    if not interval or interval[0] is None:
        return False
    low, high = interval
    return low - tolerance <= truth and (high is None or truth <= high + tolerance)


def _value(text: str) -> int | float | str:
    """A ``--set`` value: an integer, a number or a word."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def main() -> None:
    print_header(__doc__ or "specimen_margin_accuracy")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None, help="ResU-Net bundle (default: the packaged demo bundle)")
    parser.add_argument("--seeds", type=int, nargs="*", default=list(range(400, 400 + len(MARGINS_MM))))
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=("resunet", "threshold"),
        default=["resunet", "threshold"],
        help="which methods to run (default both)",
    )
    parser.add_argument(
        "--median-kernel-mm",
        type=float,
        default=None,
        help="PET median filter of the preprocessing (default: the pipeline's; below a PET voxel: none)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="phantom configuration overrides, e.g. uptake_boundary_mm=0, version=2 or placement=translated",
    )
    args = parser.parse_args()
    pre = (
        PreprocessConfig()
        if args.median_kernel_mm is None
        else PreprocessConfig(median_kernel_mm=args.median_kernel_mm)
    )
    configs = {
        "resunet": AssessConfig(method="resunet", model=args.bundle, preprocess=pre),
        "threshold": AssessConfig(method="threshold", preprocess=pre),
    }
    methods = {name: configs[name] for name in args.methods}
    overrides = {k: _value(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    loaded = load_resunet(methods["resunet"]) if "resunet" in methods else None
    if loaded is not None:
        print(f"bundle {args.bundle or 'packaged demo'}: {len(loaded.ensemble)} members")
    print(f"phantom overrides: {overrides or 'none (default realism)'}; PET median kernel {pre.median_kernel_mm} mm")
    rows: dict[str, list[tuple[float, float | None, bool, bool]]] = {m: [] for m in methods}
    print("| seed | true margin | method | margin | error | interval | covers | status | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, seed in enumerate(args.seeds):
        requested = MARGINS_MM[k % len(MARGINS_MM)]
        ph = make_specimen_phantom(SpecimenPhantomConfig(seed=seed, margin_mm=requested, **overrides))
        truth = float(ph.truth["margin_mm"])
        info = pet_info_from_mapping(ph.truth["pet"], f"phantom {seed}")
        for name, cfg in methods.items():
            t0 = time.perf_counter()
            model = loaded if name == "resunet" else None
            r = assess_specimen(ph.images["ct"], ph.images["pet"], info, cfg, model=model).result.to_json()
            margin = r["min_margin_mm"]
            error = None if margin is None else margin - truth
            interval = r["margin_interval_mm"]
            cover = covered(interval, truth, max(ph.images["ct"].spacing))
            right = r["margin_status"] == ph.truth["margin_status"]
            rows[name].append((truth, error, cover, right))
            shown = "—" if not interval or interval[0] is None else (
                f"{interval[0]:.2f}–{'∞' if interval[1] is None else f'{interval[1]:.2f}'}")  # fmt: skip
            print(
                f"| {seed} | {truth:.2f} | {name} | {'—' if margin is None else f'{margin:.2f}'} | "
                f"{'—' if error is None else f'{error:+.2f}'} | {shown} | {'yes' if cover else 'NO'} | "
                f"{r['margin_status']}{'' if right else ' (WRONG)'} | {time.perf_counter() - t0:.0f} |",
                flush=True,
            )
    print("\n| method | cases | mean absolute error (mm) | bias (mm) | interval covers | statuses right |")
    print("|---|---|---|---|---|---|")
    for name, cases in rows.items():
        errors = np.array([e for _, e, _, _ in cases if e is not None])
        mae = f"{np.abs(errors).mean():.2f}" if errors.size else "—"
        bias = f"{errors.mean():+.2f}" if errors.size else "—"
        cover = sum(c for *_, c, _ in cases)
        right = sum(r for *_, r in cases)
        print(f"| {name} | {len(cases)} | {mae} | {bias} | {cover}/{len(cases)} | {right}/{len(cases)} |")


if __name__ == "__main__":
    main()
