"""Where the specimen Residual U-Net over-extends: false positives by depth below the surface, per slicing axis,
per member, and by how the slicing plane meets the surface.

Held-out phantoms (seeds 400–405, negative margins 0.5–4 mm, default realism; the packaged bundle trained on
seeds 100–119) go through the bundle once per slicing axis (every slice, float32). On the bundle's grid, each
non-tumour tissue voxel is binned by its depth below the specimen surface, and voxels within 1 mm of the surface
also by |cos| between the slicing axis and the surface normal (1: the slice plane runs parallel to the surface,
a tangential cut; :mod:`breastseg.workflows.specimen.diagnostics`), and voxels within 0.5 mm outside the true
tumour by |cos| between the slicing axis and the tumour's normal (1: beyond the tumour's end along that axis).
Printed: the false-positive rate per depth bin
for each axis alone and for the tri-planar mean, the same per member, per bin of distance from the true tumour (a
boundary drawn too wide vs false findings elsewhere), the near-surface rate per obliquity bin, and each method's
margin error (the minimum depth of the predicted tumour, largest component, minus the true one).

If false positives gather at |cos| ≈ 1 on every axis, the tangential-slice suspicion holds; if they gather at one
depth regardless of the slice orientation, the cause lies elsewhere (normalisation at the rim, labelling).

Run: ``.venv/bin/python benchmarks/specimen_surface_errors.py [--bundle B.pt] [--seeds 400 401 …]``
(about 2 minutes per phantom on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from breastseg.machine import print_header
from breastseg.masks import binarize, depth_below_surface_mm
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom
from breastseg.suv import pet_info_from_mapping
from breastseg.workflows.specimen.bundle import ModelBundle
from breastseg.workflows.specimen.diagnostics import (
    DEPTH_BINS_MM,
    OBLIQUITY_BINS,
    TUMOUR_DISTANCE_BINS_MM,
    false_positives_by_depth,
    false_positives_by_obliquity,
    false_positives_by_tumour_distance,
    false_positives_by_tumour_obliquity,
    surface_normals,
)
from breastseg.workflows.specimen.inference import VolumeInference, predict_volume
from breastseg.workflows.specimen.margin import mask_margin_mm
from breastseg.workflows.specimen.pipeline import default_model_path
from breastseg.workflows.specimen.preprocess import preprocess

MARGINS_MM = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
AXES = {"z (axis 0)": (0,), "y (axis 1)": (1,), "x (axis 2)": (2,)}


def counts(rows: list) -> np.ndarray:
    """``(bins, 2)``: false positives and voxels per bin of a diagnostics table."""
    return np.array([[r.false_positives, r.voxels] for r in rows])


def main() -> None:
    print_header(__doc__ or "specimen_surface_errors")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None, help="ResU-Net bundle (default: the packaged demo bundle)")
    parser.add_argument("--seeds", type=int, nargs="*", default=list(range(400, 406)))
    args = parser.parse_args()
    bundle = ModelBundle.load(args.bundle or default_model_path("resunet"))
    ensemble = bundle.ensemble()
    print(f"bundle {args.bundle or 'packaged demo'}: {len(ensemble)} members")
    depth_tables: dict[str, np.ndarray] = {}  # method -> (bins, 2) false positives, voxels
    member_tables: dict[int, np.ndarray] = {}
    oblique: dict[str, np.ndarray] = {}
    tumour_oblique: dict[str, np.ndarray] = {}
    near_tumour: dict[str, np.ndarray] = {}
    margin_errors: dict[str, list[float]] = {}
    for k, seed in enumerate(args.seeds):
        t0 = time.perf_counter()
        margin = MARGINS_MM[k % len(MARGINS_MM)]
        ph = make_specimen_phantom(SpecimenPhantomConfig(seed=seed, margin_mm=margin))
        info = pet_info_from_mapping(ph.truth["pet"], f"phantom {seed}")
        pair = preprocess(ph.images["ct"], ph.images["pet"], info)
        tumour_full = ph.images["tumour"].array[pair.crop] > 0
        per_axis = {}
        for name, axes in AXES.items():
            inference = VolumeInference(slice_step=1, precision="float32", device="cpu", axes=axes)
            per_axis[name] = predict_volume(
                ensemble, pair.ct, pair.pet, pair.tissue, bundle.pixel_spacing_mm, inference
            )
        first = next(iter(per_axis.values()))
        grid, tissue = first.model_grid, first.model_tissue
        tumour = pair.ct.with_array(tumour_full.astype(np.uint8)).resample_onto(grid, order=0).array > 0
        depth = depth_below_surface_mm(tissue, grid.spacing)
        normals = surface_normals(depth, grid.spacing)
        maps = {name: np.mean(p.member_probabilities, axis=0) for name, p in per_axis.items()}
        maps["tri-planar"] = np.mean(list(maps.values()), axis=0)
        true_margin = mask_margin_mm(tumour, depth)
        assert true_margin is not None
        for name, prob in maps.items():
            predicted = binarize(prob, 0.5, fill=True, keep_largest=True, within=tissue)
            depth_rows = false_positives_by_depth(predicted, tumour, tissue, depth)
            depth_tables[name] = depth_tables.get(name, 0) + counts(depth_rows)
            by_distance = false_positives_by_tumour_distance(predicted, tumour, tissue, grid.spacing)
            near_tumour[name] = near_tumour.get(name, 0) + counts(by_distance)
            if (read := mask_margin_mm(predicted, depth)) is not None:
                margin_errors.setdefault(name, []).append(read - true_margin)
            for a, axis_name in enumerate(AXES):
                if name == axis_name:
                    near = false_positives_by_obliquity(predicted, tumour, tissue, depth, normals, a)
                    oblique[name] = oblique.get(name, 0) + counts(near)
                    cap = false_positives_by_tumour_obliquity(predicted, tumour, tissue, grid.spacing, a)
                    tumour_oblique[name] = tumour_oblique.get(name, 0) + counts(cap)
        for m in range(len(ensemble)):
            prob = np.mean([p.member_probabilities[m] for p in per_axis.values()], axis=0)
            predicted = binarize(prob, 0.5, fill=True, keep_largest=True, within=tissue)
            member_rows = false_positives_by_depth(predicted, tumour, tissue, depth)
            member_tables[m] = member_tables.get(m, 0) + counts(member_rows)
        seconds = time.perf_counter() - t0
        print(f"seed {seed}: margin {margin} mm (on the bundle grid {true_margin:.2f} mm), {seconds:.0f} s", flush=True)

    def header(bins: tuple[float, ...], unit: str) -> str:
        cells = [f"{bins[i]:g}–{bins[i + 1]:g}{unit}" if np.isfinite(bins[i + 1]) else f"> {bins[i]:g}{unit}"
                 for i in range(len(bins) - 1)]  # fmt: skip
        return "| " + " | ".join(cells) + " |"

    def rates(table: np.ndarray) -> str:
        return " | ".join("—" if v == 0 else f"{100 * fp / v:.1f} %" for fp, v in table)

    def table(title: str, first: str, bins: tuple[float, ...], rows: dict[str, np.ndarray]) -> None:
        print(f"\n{title}")
        print(f"| {first} " + header(bins, ""))
        print("|---" * len(bins) + "|")
        for name, counts in rows.items():
            print(f"| {name} | {rates(counts)} |")

    members = {f"member {m} (tri-planar)": t for m, t in member_tables.items()}
    table("False positives among non-tumour tissue, by depth below the surface (mm)", "method", DEPTH_BINS_MM,
          depth_tables | members)  # fmt: skip
    table("False positives among non-tumour tissue, by distance from the true tumour (mm)", "method",
          TUMOUR_DISTANCE_BINS_MM, near_tumour)  # fmt: skip
    cos_bins = (*OBLIQUITY_BINS[:-1], 1.0)
    table("Within 1 mm of the surface: false positives by |cos(slicing axis, surface normal)| (1 = tangential cut)",
          "axis", cos_bins, oblique)  # fmt: skip
    table("Within 0.5 mm outside the true tumour: false positives by |cos(slicing axis, tumour normal)|\n"
          "(1 = the slice runs parallel to the tumour boundary, as beyond the tumour's ends)", "axis", cos_bins,
          tumour_oblique)  # fmt: skip
    print("\nMargin error (predicted minus true minimum depth, mm; negative: too close to the surface)")
    print("| method | mean | min | max |")
    print("|---|---|---|---|")
    for name, errors in margin_errors.items():
        e = np.asarray(errors)
        print(f"| {name} | {e.mean():+.2f} | {e.min():+.2f} | {e.max():+.2f} |")


if __name__ == "__main__":
    main()
