"""``breastseg mri``: breast DCE-MRI tumour segmentation, volume and kinetics (Hirsch et al. 2022)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from breastseg.cli.options import device_option, existing_folder, existing_path
from breastseg.image import Image
from breastseg.progress import status

_cases_option = click.option(
    "--exams",
    "cases_csv",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV: case_id, exam (folder, relative to the CSV)[, tumour (reference mask file in it)].",
)


_breast_model_option = click.option(
    "--breast-model",
    "breast_model_path",
    type=existing_path,
    default=None,
    help="A breast-mask network (`breastseg mri train-breast`) instead of the threshold and chest-wall rule.",
)


def _breast_network(path: Path | None, device: str) -> Callable[[Image], np.ndarray] | None:
    """The breast-mask function of a breast model file, or None (the rule)."""
    from breastseg.workflows.mri.pipeline import breast_mask_function

    return breast_mask_function(path, device)


@click.group()
def mri() -> None:
    """Breast DCE-MRI: tumour segmentation with the DCE features and the study's valid-padding 3D U-Net.

    \b
    An exam is a folder with t1.nii.gz (pre-contrast), t1c_1 … t1c_N.nii.gz (post-contrast) and times.json
    ({"post_times_s": [...]}), or a DICOM dynamic series (times from the headers).
    segment: mask, volume, longest diameter, kinetic curve type, functional tumour volume, report figure;
    train: the network on exams with reference masks; evaluate: Dice, HD95, volume error on a table of exams;
    readers: the study's reader study (leave-one-reader-out consensus, Wilcoxon, TOST equivalence);
    train-breast: the optional breast-mask network (instead of the threshold and chest-wall rule).
    An optional t2.nii.gz is registered and shown in the report.

    \b
    Start here:
      breastseg phantom dce --out exams/e0 --seed 0        # an exam folder with known truth
      breastseg mri train --help                           # then train on a table of exams
    """


@mri.command("segment")
@click.option("--exam", "exam_dir", type=existing_folder, default=None, help="An exam folder (files or DICOM).")
@click.option("--t1", "t1_path", type=existing_path, default=None, help="Pre-contrast T1 (instead of --exam).")
@click.option("--t1c", "t1c_paths", type=existing_path, multiple=True, help="Post-contrast T1c, in order (repeat).")
@click.option("--t2", "t2_path", type=existing_path, default=None, help="Optional T2-weighted image (report only).")
@click.option("--times", default=None, help="Post-contrast times: a JSON file with post_times_s, or '90,180,…' s.")
@click.option("--model", "model_path", required=True, type=existing_path, help="A model `breastseg mri train` wrote.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.6,
    show_default=True,
    help="Post-processing: threshold at this fraction of the maximum probability (the study's 0.6).",
)
@click.option("--per-slice", is_flag=True, help="Threshold each slice at its own maximum (the study's 2D use).")
@_breast_model_option
@device_option
def segment(
    exam_dir: Path | None,
    t1_path: Path | None,
    t1c_paths: tuple[Path, ...],
    t2_path: Path | None,
    times: str | None,
    model_path: Path,
    out_dir: Path,
    fraction: float,
    per_slice: bool,
    breast_model_path: Path | None,
    device: str,
) -> None:
    """Segment the tumour of one DCE exam.

    Registers every phase onto the first T1c, computes T1c, DCE-in and DCE-out, masks the breast, runs the
    network and keeps the region holding the maximum probability. Writes OUT/tumour.nii.gz, probability.nii.gz,
    result.json and report.png.

    \b
    Examples:
      breastseg mri segment --exam exam0 --model mri.pt --out seg0
      breastseg mri segment --t1 pre.nii.gz --t1c post1.nii.gz --t1c post2.nii.gz --times 90,180 \\
          --model mri.pt --out seg0
    """
    from breastseg.errors import InputError
    from breastseg.io import read_image
    from breastseg.workflows.mri.exam import read_dce_files
    from breastseg.workflows.mri.inputs import read_exam_folder
    from breastseg.workflows.mri.pipeline import segment_exam_folder

    if (exam_dir is None) == (t1_path is None):
        raise InputError("give either --exam DIR or --t1 PRE with --t1c POST … and --times")
    if exam_dir is not None:
        exam = read_exam_folder(exam_dir)
        if t2_path is not None:
            exam.t2 = read_image(t2_path, modality="MR")
    else:
        if t1_path is None or not t1c_paths or times is None:
            raise InputError("--t1 needs at least one --t1c and the --times of the post-contrast phases")
        given: str | list[float] = times if Path(times).suffix == ".json" else [float(t) for t in times.split(",")]
        exam = read_dce_files(t1_path, list(t1c_paths), given, t2_path)
    with status("segmenting…") as step:
        result = segment_exam_folder(exam, model_path, out_dir, fraction, per_slice, device, breast_model_path, step)
    t = result.tumour
    table = Table(title=f"breast DCE-MRI: {exam.source}", show_header=False)
    table.add_row("tumour volume", f"{t.volume_ml:.2f} ml")
    table.add_row("longest diameter", f"{t.longest_diameter_mm:.1f} mm")
    curve = t.curve_type or "—"
    change = "" if t.late_change_percent is None else f" (late change {t.late_change_percent:+.0f} %)"
    table.add_row("kinetic curve", curve + change)
    ftv = t.functional_volume_ml
    table.add_row("functional tumour volume", "—" if ftv is None else f"{ftv:.2f} ml (PE ≥ 70 %)")
    table.add_row("written", str(out_dir))
    Console().print(table)


@mri.command("train")
@_cases_option
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Model .pt.")
@click.option(
    "--network",
    type=click.Choice(["valid_unet", "monai_unet"]),
    default="valid_unet",
    show_default=True,
    help="The study's valid-padding U-Net, or MONAI's standard 3D U-Net (the comparison).",
)
@click.option("--patch", type=(int, int, int), default=None, help="Patch z y x (default 19 75 75; MONAI 16 80 80).")
@click.option("--filters", type=click.IntRange(1), default=52, show_default=True, help="First-level channels.")
@click.option("--epochs", type=click.IntRange(1), default=60, show_default=True)
@click.option("--patches-per-scan", type=click.IntRange(1), default=20, show_default=True, help="Per epoch.")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option(
    "--loss",
    type=click.Choice(["generalised_dice_ce", "generalised_dice", "dice_ce"]),
    default="generalised_dice_ce",
    show_default=True,
    help="Generalised Dice (the study's) + cross-entropy; generalised Dice alone can collapse to all-background.",
)
@click.option(
    "--registration",
    type=click.Choice(["bspline", "rigid", "none"]),
    default="bspline",
    show_default=True,
    help="Phase alignment onto the first T1c.",
)
@click.option(
    "--upsample-above-mm",
    type=click.FloatRange(min=0, min_open=True),
    default=0.6,
    show_default=True,
    help="Upsample ×2 in-plane when the in-plane voxel is coarser than this.",
)
@click.option(
    "--validation-fraction",
    type=click.FloatRange(0, 0.9),
    default=0.2,
    show_default=True,
    help="Cases held out and watched (the last epoch is the model).",
)
@click.option("--seed", default=0, show_default=True)
@_breast_model_option
@device_option
def train_cmd(
    cases_csv: Path,
    out_path: Path,
    network: str,
    patch: tuple[int, int, int] | None,
    filters: int,
    epochs: int,
    patches_per_scan: int,
    batch_size: int,
    learning_rate: float,
    loss: str,
    registration: str,
    upsample_above_mm: float,
    validation_fraction: float,
    seed: int,
    breast_model_path: Path | None,
    device: str,
) -> None:
    """Train the tumour network on exams with reference masks.

    Patches tumour : non-tumour 1 : 4, half the negatives on strongly enhancing tissue; generalised Dice loss;
    Adam with poly decay; in-plane rotation. Writes OUT and OUT.card.md.

    \b
    Example:
      for s in 0 1 2 3 4; do breastseg phantom dce --out exams/e$s --seed $s; done
      printf 'case_id,exam\\ne0,e0\\ne1,e1\\ne2,e2\\ne3,e3\\ne4,e4\\n' > exams/cases.csv
      breastseg mri train --exams exams/cases.csv --out mri.pt --filters 16 --epochs 30
    """
    from breastseg.learn.trainer import Loss
    from breastseg.workflows.mri.harmonise import Method
    from breastseg.workflows.mri.inputs import BreastMode, MriPreprocessing
    from breastseg.workflows.mri.network import MriRecipe, Network, train_mri
    from breastseg.workflows.mri.pipeline import prepare_cases, read_cases_csv, validation_split

    recipe = MriRecipe(
        network=Network(network),
        patch_size=patch,
        first_channels=filters,
        epochs=epochs,
        patches_per_scan=patches_per_scan,
        batch_size=batch_size,
        learning_rate=learning_rate,
        loss=Loss(loss),
        seed=seed,
    )
    recipe.net_config()  # a patch the network cannot take fails before any exam is read
    breast_mode = BreastMode.THRESHOLD if breast_model_path is None else BreastMode.NETWORK
    pre = MriPreprocessing(upsample_above_mm, Method(registration), breast_mode)
    cases = read_cases_csv(cases_csv)
    with status("preparing exams…") as step:
        prepared = prepare_cases(cases, pre, step, _breast_network(breast_model_path, device))
    train_ids, held = validation_split([c.case_id for c in cases], validation_fraction, seed)
    model = train_mri(
        [c for c in prepared if c[0] in train_ids], [c for c in prepared if c[0] in held], recipe, pre, device
    )
    model.save(out_path)
    Console().print(
        f"trained on {len(train_ids)} exams, watched {len(held)}: validation Dice "
        f"{model.card['validation_dice']} → {out_path}"
    )


@mri.command("evaluate")
@_cases_option
@click.option("--model", "model_path", required=True, type=existing_path, help="A model `breastseg mri train` wrote.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=0.6, show_default=True)
@_breast_model_option
@device_option
def evaluate_cmd(
    cases_csv: Path, model_path: Path, out_dir: Path, fraction: float, breast_model_path: Path | None, device: str
) -> None:
    """Segment every exam of a table and compare with its reference mask.

    Writes OUT/<case>/ (the segment outputs), OUT/cases.csv (Dice, HD95 mm, volumes ml, volume error %,
    curve type) and OUT/evaluation.json (mean and median Dice). Scores are computed on the reference's grid
    (a segmentation on another grid is moved onto it; see docs/reference/evaluation.md).
    """
    from breastseg.workflows.mri.network import MriModel
    from breastseg.workflows.mri.pipeline import evaluate_cases, read_cases_csv

    model = MriModel.load(model_path)
    cases = read_cases_csv(cases_csv)
    breast = _breast_network(breast_model_path, device)
    with status("evaluating…") as step:
        evaluation = evaluate_cases(
            cases, model, out_dir, fraction, device, breast, progress=step, model_source=str(model_path)
        )
    table = Table(title=f"MRI evaluation, {len(evaluation.cases)} exams")
    for col in ("case", "Dice", "HD95 (mm)", "volume ref / pred (ml)", "curve"):
        table.add_column(col)
    for c in evaluation.cases:
        table.add_row(
            c.case_id,
            f"{c.dice:.3f}",
            f"{c.hd95_mm:.1f}",
            f"{c.reference_volume_ml:.2f} / {c.predicted_volume_ml:.2f}",
            str(c.curve_type),
        )
    Console().print(table)
    mean, median = evaluation.mean_dice, evaluation.median_dice
    shown = "—" if mean is None or median is None else f"{mean:.3f}, median {median:.3f}"
    Console().print(f"mean Dice {shown} → {out_dir}")


@mri.command("train-breast")
@_cases_option
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Model .pt.")
@click.option("--mask-name", default="breast.nii.gz", show_default=True, help="Breast mask file in each exam folder.")
@click.option("--filters", type=click.IntRange(1), default=8, show_default=True, help="First-level channels.")
@click.option("--epochs", type=click.IntRange(1), default=20, show_default=True)
@click.option("--patches-per-scan", type=click.IntRange(1), default=8, show_default=True)
@click.option("--seed", default=0, show_default=True)
@device_option
def train_breast_cmd(
    cases_csv: Path, out_path: Path, mask_name: str, filters: int, epochs: int, patches_per_scan: int, seed: int,
    device: str,
) -> None:  # fmt: skip
    """Train the optional breast-mask network on the pre-contrast T1 of exams with breast masks.

    A small 3D U-Net on the whole T1 at half the in-plane resolution (the study's breast-mask network); give it
    to `mri train`, `segment` and `evaluate` with --breast-model. Writes OUT and OUT.card.md.

    \b
    Example:
      breastseg mri train-breast --exams exams/cases.csv --out breast.pt
      breastseg mri train --exams exams/cases.csv --breast-model breast.pt --out mri.pt
    """
    from breastseg.errors import InputError
    from breastseg.io import read_image
    from breastseg.workflows.mri.breast_network import BreastNetRecipe, train_breast_network
    from breastseg.workflows.mri.inputs import read_exam_folder
    from breastseg.workflows.mri.pipeline import read_cases_csv

    cases = []
    for case in read_cases_csv(cases_csv):
        path = case.exam_dir / mask_name
        if not path.exists():
            raise InputError(f"{path}: no breast mask for case {case.case_id}")
        t1 = read_exam_folder(case.exam_dir).t1
        mask = read_image(path)
        if mask.shape != t1.shape:
            raise InputError(f"{path}: shape {mask.shape} differs from the pre-contrast T1's {t1.shape}")
        cases.append((case.case_id, t1, np.asarray(mask.array) > 0))
    recipe = BreastNetRecipe(first_channels=filters, epochs=epochs, patches_per_scan=patches_per_scan, seed=seed)
    model = train_breast_network(cases, recipe, device)
    model.save(out_path)
    Console(stderr=True).print(
        f"breast network trained on {len(cases)} exams in {model.card['seconds']} s → {out_path}"
    )


@mri.command("readers")
@click.option(
    "--readers",
    "reader_dirs",
    required=True,
    multiple=True,
    type=existing_folder,
    help="One folder per reader (repeat, ≥ 3), each with <case>.nii.gz masks.",
)
@click.option(
    "--model-pred",
    "model_dir",
    required=True,
    type=existing_folder,
    help="Folder of the network's <case>.nii.gz masks (same case names).",
)
@click.option(
    "--model-prob",
    "prob_dir",
    type=existing_folder,
    default=None,
    help="Optional folder of the network's <case>.nii.gz probabilities (for the ROC AUC).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def readers_cmd(reader_dirs: tuple[Path, ...], model_dir: Path, prob_dir: Path | None, out_dir: Path) -> None:
    """The study's reader study: every reader and the network against leave-one-reader-out consensus masks.

    Per reader: median Dice of the reader and of the network against the consensus of the other readers,
    paired Wilcoxon, ROC AUC of the probabilities; then TOST equivalence of the network with the lowest and
    highest readers as bounds. Writes OUT/readers.json.

    \b
    Example:
      breastseg mri readers --readers R1 --readers R2 --readers R3 --readers R4 --model-pred P --out study
    """
    from breastseg.errors import InputError
    from breastseg.evaluation.compare import check_same_grid
    from breastseg.io import read_image
    from breastseg.io.atomic import write_json
    from breastseg.workflows.mri.readers import reader_study

    cases = sorted(p.name for p in model_dir.glob("*.nii.gz"))
    if not cases:
        raise InputError(f"{model_dir}: no <case>.nii.gz masks")
    names = [d.name for d in reader_dirs]
    if len(set(names)) != len(names):
        raise InputError("reader folders must have different names (they name the readers)")
    masks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    model_masks, probs = [], []
    for case in cases:
        pred = read_image(model_dir / case)
        model_masks.append(np.asarray(pred.array) > 0)
        if prob_dir is not None:
            prob = read_image(prob_dir / case)
            check_same_grid(prob, pred, str(prob_dir / case), str(model_dir / case))
            probs.append(np.asarray(prob.array, float))
        for d in reader_dirs:
            path = d / case
            if not path.exists():
                raise InputError(f"{path}: reader {d.name} has no mask for case {case}")
            mask = read_image(path)
            check_same_grid(mask, pred, str(path), str(model_dir / case))
            masks[d.name].append(np.asarray(mask.array) > 0)
    result = reader_study(masks, model_masks, probs if prob_dir is not None else None)
    result["case_files"] = cases
    write_json(result, Path(out_dir) / "readers.json")
    table = Table(title=f"reader study, {len(cases)} cases")
    for col in ("reference = others of", "reader median Dice", "network median Dice", "Wilcoxon p"):
        table.add_column(col)
    for r, e in result["readers"].items():
        p = e["wilcoxon_p"]
        table.add_row(
            r, f"{e['reader_median_dice']:.3f}", f"{e['model_median_dice']:.3f}", "—" if p is None else f"{p:.3g}"
        )
    Console().print(table)
    eq = result["equivalence"]
    Console().print(
        f"TOST vs {eq['lowest_reader']} … {eq['highest_reader']}: p = {eq['p']:.3g} "
        f"({'equivalent' if eq['equivalent'] else 'not shown equivalent'})"
    )
