"""Intraoperative speed of ``breastseg specimen assess --method resunet``: the fast default against the reference.

The reference is the study's full method: every member of the ensemble, every slice along each of the three axes,
float32 (``breastseg.workflows.specimen.inference.REFERENCE``, ``assess --exact``). The fast path is the command's
default (the bundle's distilled student when it has one, every second slice interpolated, bfloat16 where the CPU has
it natively, the model loaded while the images are preprocessed). The peer is one plain float32 ResU-Net run over
every slice of the bundle's grid; ``--emulate-avx2`` runs it all as on a CPU without AVX-512 or bfloat16.
Both run the networks at the bundle's training pixel size. Both run as the real command (a fresh process each:
imports, reading, preprocessing, inference, margin, masks, figures and report.html), on the same phantoms of the 300
× 250 × 200-voxel geometry (CT 0.1 mm, PET 0.4 mm), one margin each of positive, 0.5, 1, 2 mm.

Printed per phantom: wall time of each path, speed-up, Dice between the two tumour masks, both margin statuses and
minimum margins, and peak resident memory of each process; then a summary row.

Run: ``make bench-student`` once (the 25-member ensemble, ≈ 20 min on 2 cores, and its distilled student), then
``.venv/bin/python benchmarks/specimen_inference.py [--model BUNDLE] [--phantoms N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from breastseg.evaluation.metrics import dice
from breastseg.io import read_image
from breastseg.machine import print_header
from breastseg.phantoms import write_phantom
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom
from breastseg.workflows.specimen.inference import REFERENCE, VolumeInference

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = ROOT / "build" / "bench-model" / "ensemble25_student.pt"  # make bench-student
#: None: tumour on the surface (positive); 3 mm is the most an 8 mm tumour leaves in a 14 mm-thin specimen
MARGINS_MM: tuple[float | None, ...] = (None, 0.5, 1.0, 2.0, 0.25, 1.5, 2.5, 3.0)
#: what makes PyTorch, oneDNN and NumPy run as on a CPU with AVX2 and no AVX-512 / bfloat16
AVX2_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR",
}


def phantom_config(seed: int, margin_mm: float | None, version: int = 1) -> SpecimenPhantomConfig:
    """The target geometry: 300 × 250 × 200 CT voxels of 0.1 mm (x, y, z), PET at 0.4 mm; ``version`` 2 adds the
    margin-accuracy work's confounders (benign look-alikes, a heterogeneous tumour)."""
    return SpecimenPhantomConfig(
        seed=seed,
        version=version,
        ct_spacing_mm=0.1,
        pet_spacing_mm=0.4,
        specimen_size_mm=(14.0, 17.0, 24.0),
        padding_mm=3.0,
        tumour_diameter_mm=8.0,
        margin_mm=margin_mm,
    )


def run_assess(case: Path, model: Path, inference: VolumeInference, out: Path) -> dict:
    """One ``breastseg specimen assess`` process; wall time and peak RSS (MB) from the kernel's accounting."""
    cmd = [
        str(Path(sys.executable).parent / "breastseg"),
        "specimen",
        "assess",
        "--ct",
        str(case / "ct.nii.gz"),
        "--pet",
        str(case / "pet.nii.gz"),
        "--pet-info",
        str(case / "truth.json"),
        "--method",
        "resunet",
        "--model",
        str(model),
        "--device",
        inference.device,
        "--out",
        str(out),
    ]
    if inference == REFERENCE:
        cmd.append("--exact")
    else:
        cmd += ["--slice-step", str(inference.slice_step), "--precision", inference.precision]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"assess failed on {case}:\n{stderr[-2000:]}")
    result = json.loads((out / "result.json").read_text())
    return {"wall_s": wall, "peak_mb": usage.ru_maxrss / 1024, "result": result, "mask": out / "tumour_mask.nii.gz"}


def ct_grid_context(case: Path, model: Path) -> None:
    """Context, in-process: the reference inference on the CT's own 0.1 mm grid (the bundle's pixel size ignored),
    the cost this benchmark's reference already avoids, against the reference at the bundle's pixel size."""
    from breastseg.workflows.specimen.inference import predict_volume
    from breastseg.workflows.specimen.pipeline import AssessConfig, load_resunet, load_specimen
    from breastseg.workflows.specimen.preprocess import preprocess

    ct, pet, info = load_specimen(case / "ct.nii.gz", case / "pet.nii.gz", case / "truth.json")
    pair = preprocess(ct, pet, info)
    loaded = load_resunet(AssessConfig(method="resunet", model=str(model)))
    times, masks = {}, {}
    for name, spacing in (("bundle grid", loaded.bundle.pixel_spacing_mm), ("CT grid", None)):
        t0 = time.perf_counter()
        volume = predict_volume(loaded.ensemble, pair.ct, pair.pet, pair.tissue, spacing, REFERENCE)
        times[name] = time.perf_counter() - t0
        masks[name] = volume.probability >= 0.5
    print(
        f"\ncontext (inference only, reference settings, {len(loaded.ensemble)} members, CT "
        f"{pair.ct.grid.spacing[0]:g} mm, cropped {'×'.join(map(str, pair.ct.shape[::-1]))}): "
        f"on the CT grid {times['CT grid']:.1f} s, at the bundle's {loaded.bundle.pixel_spacing_mm} mm "
        f"{times['bundle grid']:.1f} s ({times['CT grid'] / times['bundle grid']:.1f}×); "
        f"Dice between the two masks {dice(masks['CT grid'], masks['bundle grid']):.4f}"
    )


#: the peer as a process: start Python, import torch and MONAI, build MONAI's UNet with the first member's weights,
#: run it tri-planar over every slice of the saved model-grid channels (float32), save the probability
PEER_PROCESS = """
import sys, numpy as np, torch
from breastseg.nets.resunet import build_resunet
from breastseg.predict.slices import predict_triplanar
from breastseg.workflows.specimen.bundle import ModelBundle
bundle = ModelBundle.load(sys.argv[1])
member = bundle.members[0]
config = bundle.member_net(member)
net = build_resunet(config)  # MONAI's UNet, as the study ran it
net.load_state_dict(member.state_dict)
net.eval()
channels, tissue = np.load(sys.argv[2]), np.load(sys.argv[3])
prob = predict_triplanar([net], channels, config.size_multiple, batch_size=16, within=tissue)
np.save(sys.argv[4], prob)
"""


def one_network(case: Path, model: Path, tmp: Path) -> tuple[float, float]:
    """The peer: one plain float32 ResU-Net (the bundle's first member) run tri-planar over every slice of the
    bundle's grid. Returns (inference only, in-process, warm; the same as a fresh process that imports torch and
    MONAI and runs MONAI's UNet: what running one of the study's networks costs), seconds."""
    from breastseg.workflows.specimen.bundle import ModelBundle
    from breastseg.workflows.specimen.inference import model_inputs, predict_volume
    from breastseg.workflows.specimen.pipeline import load_specimen
    from breastseg.workflows.specimen.preprocess import preprocess

    ct, pet, info = load_specimen(case / "ct.nii.gz", case / "pet.nii.gz", case / "truth.json")
    pair = preprocess(ct, pet, info)
    bundle = ModelBundle.load(model)
    first = bundle.ensemble()[:1]
    predict_volume(first, pair.ct, pair.pet, pair.tissue, bundle.pixel_spacing_mm, REFERENCE)  # warm-up
    t0 = time.perf_counter()
    predict_volume(first, pair.ct, pair.pet, pair.tissue, bundle.pixel_spacing_mm, REFERENCE)
    in_process = time.perf_counter() - t0
    inputs = model_inputs(pair.ct, pair.pet, pair.tissue, bundle.pixel_spacing_mm)
    np.save(tmp / "peer_channels.npy", inputs.channels(first[0].normalisation))
    np.save(tmp / "peer_tissue.npy", inputs.tissue)
    args = [str(model), str(tmp / "peer_channels.npy"), str(tmp / "peer_tissue.npy"), str(tmp / "peer_prob.npy")]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", PEER_PROCESS, *args], check=True)
    return in_process, time.perf_counter() - t0


def probability_error(model: Path, phantoms: int, version: int, band: float) -> None:
    """In-process: how far the student's tumour probability lies from the members' (exact settings) in the shell of
    tissue within 0.5 mm of the surface, where the margin status is decided: percentiles of |difference| and the
    share of shell voxels beyond the confirmation band."""
    from breastseg.masks import depth_below_surface_mm
    from breastseg.workflows.specimen.bundle import ModelBundle
    from breastseg.workflows.specimen.inference import predict_volume
    from breastseg.workflows.specimen.pipeline import load_specimen
    from breastseg.workflows.specimen.preprocess import preprocess

    bundle = ModelBundle.load(model)
    student, members = bundle.student_net(), bundle.ensemble()
    if student is None:
        raise SystemExit(f"{model}: the bundle has no student")
    print(f"\n|student − members| tumour probability in the 0.5 mm surface shell (phantom version {version}):")
    print(f"{'phantom':<34}{'median':>8}{'p99':>8}{'p99.9':>8}{'max':>8}{f'> {band:g}':>10}")
    with tempfile.TemporaryDirectory() as tmp_name:
        for i in range(phantoms):
            margin = MARGINS_MM[i % len(MARGINS_MM)]
            case = Path(tmp_name) / f"case{i}"
            phantom = make_specimen_phantom(phantom_config(i, margin, version))
            write_phantom(phantom, case)
            ct, pet, info = load_specimen(case / "ct.nii.gz", case / "pet.nii.gz", case / "truth.json")
            pair = preprocess(ct, pet, info)
            spacing = bundle.pixel_spacing_mm
            fast = predict_volume([student], pair.ct, pair.pet, pair.tissue, spacing, VolumeInference())
            exact = predict_volume(members, pair.ct, pair.pet, pair.tissue, spacing, REFERENCE)
            depth = depth_below_surface_mm(pair.tissue, pair.ct.grid.spacing)
            shell = pair.tissue & (depth <= 0.5)
            diff = np.abs(fast.probability[shell] - exact.probability[shell])
            q = np.percentile(diff, [50, 99, 99.9])
            truth = phantom.truth
            name = f"v{version} seed {i}, {truth['margin_status']} {truth['margin_mm']:.2f} mm"
            print(
                f"{name:<34}{q[0]:>8.3f}{q[1]:>8.3f}{q[2]:>8.3f}{diff.max():>8.3f}{100 * np.mean(diff > band):>9.3f}%",
                flush=True,
            )


def write_distil_set(out: Path, count: int) -> Path:
    """Training specimens for ``specimen distil`` in the benchmark's geometry, disjoint from the benchmark's own
    phantoms (seeds 1000 and up; margins cycling through the same values; every second one a version-2 phantom with
    the confounders, so that the student also learns what the members make of benign look-alikes); returns the
    manifest."""
    rows = ["case_id,ct,pet,pet_info,patient_id"]
    for i in range(count):
        seed = 1000 + i
        config = phantom_config(seed, MARGINS_MM[i % len(MARGINS_MM)], version=1 + i % 2)
        write_phantom(make_specimen_phantom(config), out / f"d{seed}")
        rows.append(f"d{seed},d{seed}/ct.nii.gz,d{seed}/pet.nii.gz,d{seed}/truth.json,distil{seed}")
        print(f"  wrote {out / f'd{seed}'}", flush=True)
    (out / "manifest.csv").write_text("\n".join(rows) + "\n")
    return out / "manifest.csv"


def main() -> None:
    if "--emulate-avx2" in sys.argv and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **AVX2_ENV})
    print_header(__doc__ or "specimen_inference")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_BUNDLE, help="ResU-Net bundle (default: make bench-student)"
    )
    parser.add_argument("--phantoms", type=int, default=len(MARGINS_MM), help="how many phantoms (margins cycle)")
    parser.add_argument(
        "--phantom-version",
        type=int,
        default=1,
        help="specimen phantom generator version (2: with the confounders of the margin-accuracy work)",
    )
    parser.add_argument("--fast-step", type=int, default=VolumeInference().slice_step, help="fast path slice step")
    parser.add_argument(
        "--fast-precision", default=VolumeInference().precision, help="fast path precision (auto, float32, bfloat16)"
    )
    parser.add_argument(
        "--write-distil-set",
        type=Path,
        default=None,
        help="only write this many (--count) training specimens for `specimen distil` into this folder, then stop",
    )
    parser.add_argument("--count", type=int, default=16, help="with --write-distil-set: how many specimens")
    parser.add_argument(
        "--emulate-avx2",
        action="store_true",
        help="run everything (commands and the peer) as on an AVX2-only CPU: "
        + " ".join(f"{k}={v!r}" for k, v in AVX2_ENV.items()),
    )
    parser.add_argument(
        "--ct-grid-context",
        action="store_true",
        help="also time the reference inference on the CT's own grid for the first phantom (minutes)",
    )
    parser.add_argument(
        "--probability-error",
        action="store_true",
        help="only measure, in-process, how far the student's probability lies from the members' near the surface",
    )
    args = parser.parse_args()
    if args.probability_error:
        probability_error(args.model, args.phantoms, args.phantom_version, VolumeInference().confirm_band)
        return
    if args.write_distil_set is not None:
        print(f"manifest: {write_distil_set(args.write_distil_set, args.count)}")
        return
    fast_inference = VolumeInference(slice_step=args.fast_step, precision=args.fast_precision)
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: no such bundle; run `make bench-student` or pass --model")

    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for i in range(args.phantoms):
            margin = MARGINS_MM[i % len(MARGINS_MM)]
            case = tmp / f"case{i}"
            phantom = make_specimen_phantom(phantom_config(i, margin, args.phantom_version))
            write_phantom(phantom, case)
            truth = phantom.truth
            ref = run_assess(case, args.model, REFERENCE, tmp / f"ref{i}")
            fast = run_assess(case, args.model, fast_inference, tmp / f"fast{i}")
            a = read_image(ref["mask"]).array > 0
            b = read_image(fast["mask"]).array > 0
            if i == 0:
                peer_s, peer_process_s = one_network(case, args.model, tmp)
            rows.append(
                {
                    "case": f"{'v2 ' if args.phantom_version > 1 else ''}seed {i}, {truth['margin_status']} "
                    f"{truth['margin_mm']:.2f} mm",
                    "shape": "×".join(str(n) for n in phantom.images["ct"].shape[::-1]),
                    "ref": ref,
                    "fast": fast,
                    "dice": float(dice(a, b)) if a.any() or b.any() else 1.0,
                }
            )
            print(
                f"  done {rows[-1]['case']}: reference {ref['wall_s']:.1f} s, fast {fast['wall_s']:.1f} s", flush=True
            )

    first, exact = rows[0]["fast"]["result"], rows[0]["ref"]["result"]
    print(
        f"\nbundle {args.model.name}: reference {exact['model']['members_used']} members, every slice, float32, "
        f"batch {REFERENCE.batch_size}; fast: {first['model']['inference_path']}, slice step {args.fast_step}, "
        f"{first['model']['precision']}, batch {fast_inference.batch_size}; model grid "
        f"{first['model']['pixel_spacing_mm'][0]:g} mm; device {first['model']['device']}; {os.cpu_count()} cores"
    )
    header = (
        f"{'phantom (x×y×z voxels)':<38}{'ref s':>8}{'fast s':>8}{'speed-up':>9}{'Dice':>8}"
        f"{'ref status':>12}{'fast status':>12}{'ref mm':>8}{'fast mm':>8}{'ref MB':>8}{'fast MB':>8}"
    )
    print(header)
    print("-" * len(header))

    def fmt_mm(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    def fast_status(result: dict) -> str:  # '*': the student's status was not settled and the members decided
        return result["margin_status"] + ("*" if result["model"]["inference_path"].startswith("ensemble") else "")

    for r in rows:
        ref, fast = r["ref"], r["fast"]
        print(
            f"{r['case'] + ' (' + r['shape'] + ')':<38}{ref['wall_s']:>8.1f}{fast['wall_s']:>8.1f}"
            f"{ref['wall_s'] / fast['wall_s']:>8.1f}×{r['dice']:>8.4f}"
            f"{ref['result']['margin_status']:>12}{fast_status(fast['result']):>12}"
            f"{fmt_mm(ref['result']['min_margin_mm']):>8}{fmt_mm(fast['result']['min_margin_mm']):>8}"
            f"{ref['peak_mb']:>8.0f}{fast['peak_mb']:>8.0f}"
        )
    ref_t = np.array([r["ref"]["wall_s"] for r in rows])
    fast_t = np.array([r["fast"]["wall_s"] for r in rows])
    agree = sum(r["ref"]["result"]["margin_status"] == r["fast"]["result"]["margin_status"] for r in rows)
    diffs = [
        abs(r["ref"]["result"]["min_margin_mm"] - r["fast"]["result"]["min_margin_mm"])
        for r in rows
        if r["ref"]["result"]["min_margin_mm"] is not None and r["fast"]["result"]["min_margin_mm"] is not None
    ]
    print("-" * len(header))
    print(
        f"{'mean (min Dice, status agreement)':<38}{ref_t.mean():>8.1f}{fast_t.mean():>8.1f}"
        f"{ref_t.mean() / fast_t.mean():>8.1f}×{min(r['dice'] for r in rows):>8.4f}"
        f"{f'{agree}/{len(rows)} agree':>24}"
        f"{f'max margin difference {max(diffs):.2f} mm' if diffs else '':>36}"
    )
    decided = sum(r["fast"]["result"]["model"]["inference_path"].startswith("ensemble") for r in rows)
    print(
        f"* the student's status was not settled (a tumour drawn at 0.5 ± {fast_inference.confirm_band} would change "
        f"it), so the members decided at the exact settings: {decided} of {len(rows)} phantoms"
    )
    print(
        f"\npeer: one float32 ResU-Net tri-planar over every slice of the bundle's grid, inference only: "
        f"{peer_s:.1f} s; fast command end to end / peer: {fast_t.mean() / peer_s:.2f}× (mean), "
        f"{fast_t.max() / peer_s:.2f}× (slowest)"
    )
    print(
        f"peer as a process (start-up, torch + MONAI import, MONAI's UNet, same inference): {peer_process_s:.1f} s; "
        f"fast command end to end / peer process: {fast_t.mean() / peer_process_s:.2f}× (mean), "
        f"{fast_t.max() / peer_process_s:.2f}× (slowest)"
    )
    print("\nfast path, seconds per step (last phantom):")
    for step, seconds in rows[-1]["fast"]["result"]["timings_s"].items():
        print(f"  {step:<24}{seconds:>8.2f}")
    truths = [r["case"] for r in rows]
    print(f"truth: {'; '.join(truths)}")
    if args.ct_grid_context:
        with tempfile.TemporaryDirectory() as tmp_name:
            case = Path(tmp_name) / "case0"
            write_phantom(make_specimen_phantom(phantom_config(0, MARGINS_MM[0])), case)
            ct_grid_context(case, args.model)


if __name__ == "__main__":
    main()
