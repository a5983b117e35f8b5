"""``breastseg ultrasound``: breast-tumour masks on 2D ultrasound (Yao et al. 2026; public data: BUSI)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
from rich.console import Console

from breastseg.cli.options import device_option, existing_folder, existing_path
from breastseg.errors import InputError
from breastseg.io.atomic import write_json
from breastseg.learn.duplicates import DHASH_MAX_DISTANCE, PHASH_MAX_DISTANCE
from breastseg.progress import Bar, bar
from breastseg.workflows.ultrasound.dataset import read_dataset
from breastseg.workflows.ultrasound.postprocess import MaskRule
from breastseg.workflows.ultrasound.split import make_split, read_split_folds, write_split

if TYPE_CHECKING:
    import torch

    from breastseg.learn.trainer import TrainConfig
    from breastseg.nets import NetConfig
    from breastseg.workflows.ultrasound.model import UltrasoundModel

#: torchvision's segmentation networks (kept here so that --help needs no torch import)
ARCHS = (
    "fcn_resnet101",
    "fcn_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
)


_data_option = click.option(
    "--data",
    "data_dir",
    required=True,
    type=existing_folder,
    help="Dataset folder (BUSI, images/ + masks/, or nnU-Net raw).",
)
_masks_option = click.option(
    "--masks",
    "masks_dir",
    default=None,
    type=existing_folder,
    help="Masks folder (NAME.png or NAME_mask.png per image), when the images are a plain folder rather than a "
    "whole dataset (BUSI, images/ + masks/, nnU-Net raw).",
)


@click.group()
def ultrasound() -> None:
    """Breast-ultrasound tumour segmentation: dataset split, training, evaluation, prediction.

    \b
    Datasets: BUSI's folders (benign/ malignant/ normal/ with NAME.png + NAME_mask.png), an images/ + masks/
    pair, or an nnU-Net v2 raw dataset (imagesTr/CASE_0000.png, labelsTr/CASE.png, dataset.json).
    """


@ultrasound.command("split")
@_data_option
@_masks_option
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Cross-validation folds.")
@click.option("--seed", default=0, show_default=True, help="Seed of the dealing of groups to folds.")
@click.option(
    "--phash-max",
    type=click.IntRange(0, 64),
    default=PHASH_MAX_DISTANCE,
    show_default=True,
    help="Images whose perceptual hashes differ in at most this many of 64 bits are one group.",
)
@click.option(
    "--dhash-max",
    type=click.IntRange(0, 64),
    default=DHASH_MAX_DISTANCE,
    show_default=True,
    help="... or whose difference hashes differ in at most this many bits (pHashes within 20).",
)
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Split file (.json)."
)
def split(
    data_dir: Path,
    masks_dir: Path | None,
    folds: int,
    seed: int,
    phash_max: int,
    dhash_max: int,
    out_path: Path,
) -> None:
    """Write a cross-validation split that keeps near-duplicate images in one fold.

    Every image is hashed (perceptual + difference hash); near-duplicates form groups; the groups are dealt to
    folds stratified by class. The file records folds, groups, every duplicate link with its distances and
    the groups whose copies carry different classes. Train and evaluate with --split FILE.

    \b
    Example:
      breastseg ultrasound split --data ../shared/data/busi --out busi_split.json
    """
    cases = read_dataset(data_dir, masks_dir)
    with bar("hashing", total=len(cases)) as shown:
        result = make_split(cases, folds, seed, phash_max, dhash_max, lambda done, _n: shown.update(completed=done))
    write_split(result, out_path)
    sizes = Counter(result.groups.values())
    n_groups = len(sizes)
    in_groups = sum(n for n in sizes.values() if n > 1)
    console = Console()
    console.print(
        f"{len(cases)} images, {n_groups} groups ({in_groups} images share a group with a near-duplicate), "
        f"{len(result.conflicts())} groups with conflicting classes; folds of "
        f"{', '.join(str(len(f)) for f in result.folds)} images"
    )
    console.print(f"written {out_path}")


NET_CHOICES = ("resunet", *ARCHS)


def _net_config(net: str, depth: int, first_channels: int, backbone_weights: str | None) -> NetConfig:
    from breastseg.nets import ResUNetConfig, TorchvisionSegConfig

    if net == "resunet":
        return ResUNetConfig(in_channels=1, depth=depth, first_channels=first_channels)
    return TorchvisionSegConfig(net, in_channels=1, backbone_weights=backbone_weights)  # type: ignore[arg-type]


def _fold_list(text: str | None, n: int) -> list[int]:
    if not text:
        return list(range(n))
    try:
        chosen = [int(v) for v in text.split(",")]
    except ValueError as exc:
        raise InputError(f"--folds-to-run takes fold numbers like 0,2,4; got {text!r}") from exc
    if any(not 0 <= k < n for k in chosen):
        raise InputError(f"--folds-to-run: folds are 0..{n - 1}; got {text!r}")
    return chosen


@ultrasound.command("train")
@_data_option
@_masks_option
@click.option(
    "--split",
    "split_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Split file from `breastseg ultrasound split`; default: made now (5 folds) into OUT/split.json.",
)
@click.option(
    "--net",
    type=click.Choice(NET_CHOICES),
    default="resunet",
    show_default=True,
    help="Network: the specimen workflow's MONAI ResU-Net, or a torchvision one (the study: "
    "fcn_resnet101, deeplabv3_resnet101).",
)
@click.option("--depth", type=click.IntRange(2, 7), default=5, show_default=True, help="ResU-Net levels.")
@click.option(
    "--channels",
    "first_channels",
    type=click.IntRange(4),
    default=16,
    show_default=True,
    help="ResU-Net first-level channels.",
)
@click.option(
    "--backbone-weights",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Local ImageNet backbone weights for a torchvision network (nothing is downloaded).",
)
@click.option(
    "--size",
    "input_size",
    type=click.IntRange(32),
    default=256,
    show_default=True,
    help="Images are resized to SIZE x SIZE pixels for the network.",
)
@click.option("--epochs", type=click.IntRange(1), default=60, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True)
@click.option(
    "--optimiser",
    type=click.Choice(["adamw", "sgd"]),
    default="adamw",
    show_default=True,
    help="AdamW, or SGD with Nesterov momentum 0.99 (the specimen study's; use --learning-rate 0.01).",
)
@click.option(
    "--loss",
    type=click.Choice(["dice_ce", "dice"]),
    default="dice_ce",
    show_default=True,
    help="Dice + cross-entropy, or Dice alone.",
)
@click.option(
    "--schedule",
    type=click.Choice(["poly", "plateau"]),
    default="poly",
    show_default=True,
    help="poly: nnU-Net's decaying learning rate for exactly --epochs, the last epoch kept (the final model then "
    "repeats the CV's recipe exactly); plateau: halve on a stalled validation Dice, stop early, keep the best.",
)
@click.option(
    "--patience",
    type=click.IntRange(1),
    default=15,
    show_default=True,
    help="With --schedule plateau: stop when the validation Dice has not improved for this many epochs.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="Training arithmetic: bfloat16 autocast is 1.4-1.7x faster where the CPU/GPU has it natively (auto "
    "uses it there); give it explicitly to reproduce a model on another machine.",
)
@click.option(
    "--augmentation",
    type=click.Choice(["standard", "strong"]),
    default="standard",
    show_default=True,
    help="standard: flip, small affine, gamma / contrast / brightness; strong: wider affine ranges with a stretch, "
    "plus blur, simulated low resolution and speckle-like noise (nnU-Net's set adapted to ultrasound).",
)
@device_option
@click.option("--seed", default=0, show_default=True)
@click.option("--folds-to-run", default=None, help="Comma-separated test folds to run (default: all).")
@click.option(
    "--final",
    is_flag=True,
    help="Instead of cross-validating, train the model to ship on every image of the dataset (lesion and normal "
    "images, as the CV's training folds) for exactly --epochs epochs (with --schedule poly the CV's own --epochs; "
    "with plateau the CV's median best epoch) and write OUT/model.pt with its card.",
)
@click.option(
    "--cv-summary",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --final: the cross-validation's cv_summary.json, quoted in the model card.",
)
@click.option(
    "--mask-rule",
    "mask_rule_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --final: mask_rule.json from `ultrasound analyse` of the CV (default: probability ≥ 0.5).",
)
@click.option("--licence", default=None, help="With --final: the training data's licence, for the model card.")
@click.option(
    "--card-note",
    "card_notes",
    multiple=True,
    help="With --final: a line for the model card (how to reproduce it, limitations …); repeatable.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: fold models, per-image CSVs, cv_summary.json.",
)
def train_cmd(
    data_dir: Path,
    masks_dir: Path | None,
    split_path: Path | None,
    net: str,
    depth: int,
    first_channels: int,
    backbone_weights: str | None,
    input_size: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    optimiser: str,
    loss: str,
    schedule: str,
    patience: int,
    precision: str,
    augmentation: str,
    device: str,
    seed: int,
    folds_to_run: str | None,
    final: bool,
    cv_summary: Path | None,
    mask_rule_path: Path | None,
    licence: str | None,
    card_notes: tuple[str, ...],
    out_dir: Path,
) -> None:
    """Cross-validate a network on a duplicate-grouped split (test fold k, validation fold k + 1).

    Each fold writes its model (fold<k>.pt + card) and a CSV of its test images' Dice, pixel accuracy, recall
    and precision on the images' own grids; cv_summary.json holds the means per class (benign, malignant),
    pooled confusion matrices and the false-positive area on normal images. Interrupted runs resume.

    \b
    Example (BUSI, the project's split):
      breastseg ultrasound train --data ../shared/data/busi --net resunet --size 256 --out cv/resunet
    """

    from breastseg.learn.trainer import Loss, Optimiser, Schedule, TrainConfig
    from breastseg.predict.device import resolve_device, resolve_precision
    from breastseg.workflows.ultrasound.crossval import cross_validate, summarise_cv
    from breastseg.workflows.ultrasound.model import ultrasound_patches

    run_on = resolve_device(device)
    cases = read_dataset(data_dir, masks_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        optimiser=Optimiser(optimiser),
        loss=Loss(loss),
        early_stopping_patience=patience,
        patch=ultrasound_patches(input_size, augmentation),
        seed=seed,
        schedule=Schedule(schedule),
        precision=resolve_precision(precision, run_on),
    )
    network = _net_config(net, depth, first_channels, backbone_weights)
    if final:
        _train_final(
            cases,
            network,
            config,
            input_size,
            f"{net} ({input_size} px)",
            data_dir,
            cv_summary,
            _read_mask_rule(mask_rule_path),
            licence,
            card_notes,
            out_dir,
            run_on,
        )
        return
    if split_path is None:
        split_path = write_split(make_split(cases), out_dir / "split.json")
    folds = read_split_folds(split_path)
    console = Console()
    card = {"title": f"breastseg ultrasound {net}", "data": str(data_dir), "split": str(split_path)}

    def report(k: int, scores: list) -> None:
        dice = [s.dice for s in scores if s.dice is not None]
        console.print(f"fold {k}: {len(scores)} test images, mean Dice on lesion images {np.mean(dice):.3f}")

    which = _fold_list(folds_to_run, len(folds))
    scores = cross_validate(cases, folds, network, config, input_size, out_dir, which, card, report, run_on)
    summary = summarise_cv(scores)
    write_json({"folds_run": sorted({s.fold for s in scores}), **summary}, out_dir / "cv_summary.json")
    for name in ("lesion", "benign", "malignant"):
        if name in summary:
            d = summary[name]["per_image"]["dice"]
            console.print(f"{name:<10} {summary[name]['images']:>4} images  Dice {d['mean']:.3f} ± {d['sd']:.3f}")
    console.print(f"written {out_dir / 'cv_summary.json'}")


def _load_model(model: Path | None) -> UltrasoundModel:
    from breastseg.workflows.ultrasound.model import UltrasoundModel, default_model_path

    return UltrasoundModel.load(model if model is not None else default_model_path())


PRINTED_IMAGES = 20  # `predict` lists this many images on the terminal

_flip_option = click.option(
    "--flip/--no-flip",
    default=True,
    show_default=True,
    help="Test-time augmentation: also predict the left-right mirrored image and average (≈ 1.5× the time).",
)

_model_option = click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Ultrasound model (.pt from `ultrasound train`); default: the packaged BUSI model.",
)


@ultrasound.command("predict")
@click.option(
    "--image",
    "image_path",
    required=True,
    type=existing_path,
    help="An image (PNG, JPEG, TIFF, BMP or DICOM) or a folder of them.",
)
@_model_option
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Probability cut; default: the model's mask rule (chosen on its cross-validation; see its card).",
)
@_flip_option
@device_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def predict_cmd(
    image_path: Path, model: Path | None, threshold: float | None, flip: bool, device: str, out_dir: Path
) -> None:
    """Segment the lesion in one image or a whole folder (the model is loaded once).

    Writes NAME_mask.png, NAME_overlay.png and NAME.json (area in pixels, and in mm² when a DICOM gives the
    pixel size; the peak lesion probability, the network's confidence that a lesion is there) per image, and
    summary.json; prints each image's verdict and peak probability.

    \b
    Example:
      breastseg ultrasound predict --image scans/ --out masks/
    """
    from breastseg.predict.device import resolve_device
    from breastseg.workflows.ultrasound.predict import list_images, predict_folder

    run_on = resolve_device(device)
    total = len(list_images(image_path))
    with bar("predicting", total=total) as shown:
        results = predict_folder(
            image_path, out_dir, model, threshold, flip, run_on, lambda done, _n: shown.update(completed=done)
        )
    console = Console()
    for r in results[:PRINTED_IMAGES]:
        area = f"{r.area_mm2:.1f} mm²" if r.area_mm2 is not None else f"{r.area_px} px"
        verdict = f"lesion {area}" if r.lesion_found else "no lesion"
        console.print(f"{Path(r.image).name:<40} {verdict:<22} peak probability {r.peak_probability:.2f}")
    if len(results) > PRINTED_IMAGES:
        console.print(f"… and {len(results) - PRINTED_IMAGES} more (summary.json)")
    found = sum(r.lesion_found for r in results)
    console.print(f"{len(results)} images, a lesion found in {found}; written to {out_dir}")


@ultrasound.command("evaluate")
@click.option(
    "--images",
    "images_dir",
    required=True,
    type=existing_folder,
    help="Images folder, or a whole dataset (BUSI, images/ + masks/, nnU-Net raw) when --masks is left out.",
)
@_masks_option
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Model(s) to evaluate; two or more are compared pairwise (Wilcoxon). Default: the packaged model.",
)
@click.option("--overlays/--no-overlays", default=True, show_default=True, help="Write one overlay per image.")
@_flip_option
@device_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def evaluate_cmd(
    images_dir: Path,
    masks_dir: Path | None,
    models: tuple[Path, ...],
    overlays: bool,
    flip: bool,
    device: str,
    out_dir: Path,
) -> None:
    """Score model(s) against reference masks: Dice, pixel accuracy, recall, precision, confusion matrix.

    Per model: metrics.json (per class: per-image mean ± SD and pooled, with the pixel confusion matrix;
    normal images: false-positive area), images.csv, confusion_matrix.png and overlays/ (reference green,
    prediction orange). With several models, comparison.json holds paired Wilcoxon tests.

    \b
    Example:
      breastseg ultrasound evaluate --images test/images --masks test/masks --model a.pt --model b.pt --out eval
    """
    from breastseg.predict.device import resolve_device
    from breastseg.report.figures import confusion_matrix_figure
    from breastseg.workflows.ultrasound.crossval import summarise_cv, write_scores
    from breastseg.workflows.ultrasound.predict import compare_models, score_cases, seen_in_training

    run_on = resolve_device(device)
    cases = read_dataset(images_dir, masks_dir)
    paths: list[Path | None] = list(models) or [None]
    names = [p.stem if p is not None else "packaged" for p in paths]
    if len(set(names)) != len(names):
        names = [f"model{i}_{n}" for i, n in enumerate(names)]
    all_scores = {}
    console = Console()
    for name, path in zip(names, paths, strict=True):
        folder = out_dir / name if len(paths) > 1 else out_dir
        loaded = _load_model(path)
        with bar(f"evaluating {name}", total=len(cases)) as shown:

            def advance(done: int, _total: int, shown: Bar = shown) -> None:
                shown.update(completed=done)

            scores = score_cases(cases, loaded, folder / "overlays" if overlays else None, advance, flip, run_on)
        seen = seen_in_training(loaded, cases)
        if seen:
            click.echo(
                f"breastseg: warning: {len(seen)} of {len(cases)} images (e.g. {seen[0]}) were in {name}'s training "
                "data: these scores measure memory, not how the model does on new images",
                err=True,
            )
        summary = summarise_cv(scores)
        write_scores(scores, folder / "images.csv")
        document = {"model": str(path or "packaged"), "images": len(scores), "images_seen_in_training": len(seen)}
        write_json({**document, **summary}, folder / "metrics.json")
        if "lesion" in summary:
            counts = summary["lesion"]["pooled"]["confusion_matrix"]["counts"]
            confusion_matrix_figure(counts, ["background", "lesion"], folder / "confusion_matrix.png", name)
            d = summary["lesion"]["per_image"]["dice"]
            console.print(f"{name}: {summary['lesion']['images']} lesion images, Dice {d['mean']:.3f} ± {d['sd']:.3f}")
        all_scores[name] = scores
    if len(names) > 1:
        comparison = {
            f"{a} vs {b}": compare_models(all_scores[a], all_scores[b])
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        }
        write_json(comparison, out_dir / "comparison.json")
    console.print(f"written {out_dir}")


@ultrasound.command("compare")
@click.option(
    "--cv",
    "cv_dirs",
    multiple=True,
    required=True,
    type=existing_folder,
    help="A cross-validation folder from `ultrasound train`; give two or more.",
)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
def compare_cmd(cv_dirs: tuple[Path, ...], out_path: Path) -> None:
    """Compare cross-validated networks on the same split: per-image Dice, pixel accuracy and recall of the
    lesion images, paired by image, Wilcoxon signed-rank (the study's FCN vs DeepLabV3 comparison).

    Writes OUT (JSON: each network's CV summary and every pairwise test) and prints a table.

    \b
    Example:
      breastseg ultrasound compare --cv cv/resunet192 --cv cv/lraspp192 --out cv/comparison.json
    """
    from breastseg.workflows.ultrasound.crossval import read_cv_scores, summarise_cv
    from breastseg.workflows.ultrasound.predict import compare_models

    if len(cv_dirs) < 2:
        raise click.UsageError("give at least two --cv folders to compare")
    names = [str(d) for d in cv_dirs]
    scores = {name: read_cv_scores(d) for name, d in zip(names, cv_dirs, strict=True)}
    summaries = {name: summarise_cv(s) for name, s in scores.items()}
    pairs = {f"{a} vs {b}": compare_models(scores[a], scores[b]) for i, a in enumerate(names) for b in names[i + 1 :]}
    write_json({"summaries": summaries, "comparisons": pairs}, out_path)
    console = Console()
    for name, summary in summaries.items():
        d = summary["lesion"]["per_image"]["dice"]
        console.print(f"{name}: {summary['lesion']['images']} lesion images, Dice {d['mean']:.3f} ± {d['sd']:.3f}")
    for pair, result in pairs.items():
        dice = result["dice"]
        console.print(
            f"{pair}: {result['images']} paired images, Dice {dice['mean_a']:.3f} vs {dice['mean_b']:.3f}, "
            f"Wilcoxon p = {dice['wilcoxon_p']:.3g}"
        )
    console.print(f"written {out_path}")


@ultrasound.command("analyse")
@click.option(
    "--cv",
    "cv_dir",
    required=True,
    type=existing_folder,
    help="A cross-validation folder from `ultrasound train` (its fold<k>.pt models and fold<k>_images.csv).",
)
@_data_option
@_masks_option
@click.option(
    "--worst",
    "fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.1,
    show_default=True,
    help="Share of the lesion images, lowest Dice first, to review.",
)
@_flip_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def analyse_cmd(
    cv_dir: Path, data_dir: Path, masks_dir: Path | None, fraction: float, flip: bool, out_dir: Path
) -> None:
    """Error analysis and mask rule of a cross-validation, from its out-of-fold predictions.

    Every test image is predicted again by its fold's model. Writes mask_rules.csv (each candidate rule —
    threshold, one component kept, holes filled — scored on all images), mask_rule.json (the rule chosen: best
    lesion Dice without more normal images with false positives than the plain 0.5 cut; give it to `train
    --final --mask-rule`), failures.csv (the worst images, each with the cause of its failure), causes.csv,
    causes.png (chart) and examples.png (the worst images with reference green, prediction orange).

    \b
    Example:
      breastseg ultrasound analyse --cv build/us-cv/resunet192-poly60 --data ../shared/data/busi --out build/us-errors
    """
    from breastseg.io.tables import write_csv_rows
    from breastseg.workflows.ultrasound.errors import (
        REVIEW_COLUMNS,
        analyse_cv,
        cause_chart,
        cause_table,
        example_sheet,
    )

    cases = read_dataset(data_dir, masks_dir)
    with bar("predicting out of fold") as shown:
        analysis = analyse_cv(
            cv_dir, cases, fraction, flip, progress=lambda done, n: shown.update(completed=done, total=n)
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [s.row() for s in analysis.rule_scores]
    write_csv_rows(rows, out_dir / "mask_rules.csv", tuple(rows[0]))
    plain = analysis.plain
    write_json(
        {
            **analysis.chosen.row(),
            "cv": str(cv_dir),
            "plain_cut_mean_dice": round(plain.mean_dice, 4),
            "plain_cut_normals_with_false_positives": plain.normals_with_false_positives,
            "wilcoxon_p_vs_plain_cut": analysis.chosen_vs_plain_p,
        },
        out_dir / "mask_rule.json",
    )
    write_csv_rows([r.row() for r in analysis.reviews], out_dir / "failures.csv", REVIEW_COLUMNS)
    causes = cause_table(analysis.reviews)
    if causes:
        write_csv_rows(causes, out_dir / "causes.csv", tuple(causes[0]))
    cause_chart(analysis.reviews, analysis.lesion_dice, out_dir / "causes.png")
    example_sheet(analysis.examples, out_dir / "examples.png")
    console = Console()
    chosen = analysis.chosen
    console.print(
        f"mask rule: {chosen.rule.describe()} — lesion Dice {chosen.mean_dice:.3f} (plain 0.5 cut "
        f"{plain.mean_dice:.3f}); normals with false positives {chosen.normals_with_false_positives} "
        f"(plain {plain.normals_with_false_positives}) of {chosen.normals}; paired Wilcoxon p = "
        f"{analysis.chosen_vs_plain_p:.3g}"
    )
    for row in causes:
        console.print(f"{row['cause']:<34} {row['images']:>3} images, mean Dice {row['mean_dice']:.2f}")
    console.print(f"written {out_dir}")


def _read_mask_rule(path: Path | None) -> tuple[MaskRule, str | None]:
    """The rule of a ``mask_rule.json`` (``ultrasound analyse``), or the plain 0.5 cut, and a line for the
    model card saying what the rule did on the cross-validation (``None`` without one)."""
    if path is None:
        return MaskRule(), None
    import json

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rule = MaskRule.from_json(doc)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a mask rule from 'breastseg ultrasound analyse' ({exc})") from exc
    if "plain_cut_mean_dice" not in doc:
        return rule, f"chosen on {doc.get('cv', 'the cross-validation')} ({path})"
    return rule, (
        f"lesion Dice {doc['mean_dice']:.3f} (the plain 0.5 cut: {doc['plain_cut_mean_dice']:.3f}, paired Wilcoxon "
        f"p = {doc['wilcoxon_p_vs_plain_cut']:.2g}); normal images with false positives "
        f"{doc['normals_with_false_positives']}/{doc['normals']} (plain cut "
        f"{doc['plain_cut_normals_with_false_positives']}), on the out-of-fold predictions of {doc.get('cv')}"
    )


def _train_final(
    cases: list,
    network: NetConfig,
    config: TrainConfig,
    input_size: int,
    name: str,
    data_dir: Path,
    cv_summary: Path | None,
    rule: tuple[MaskRule, str | None],
    licence: str | None,
    card_notes: tuple[str, ...],
    out_dir: Path,
    device: torch.device,
) -> None:
    import json

    from breastseg.workflows.ultrasound.dataset import case_fingerprints
    from breastseg.workflows.ultrasound.model import UltrasoundModel, train_final

    # Every image, normals included: the cross-validation trained on its folds' normal images too, so its
    # estimate describes this recipe (and normal images teach the network that an image may have no lesion).
    n_lesion = sum(c.label != "normal" for c in cases)
    result = train_final(cases, network, config, input_size, out_dir / "model.checkpoint.pt", device)
    card: dict[str, object] = {
        "title": f"breastseg ultrasound {name}",
        "data": f"{data_dir}: all {len(cases)} images ({n_lesion} with a lesion, {len(cases) - n_lesion} normal) used "
        "for training",
        "training": f"{config.epochs} epochs, {config.optimiser} lr {config.learning_rate} ({config.schedule} "
        f"schedule), {config.loss}, batch {config.batch_size}, {config.precision}, seed {config.seed}, the last "
        "epoch kept",
        "licence_of_the_data": licence or "see the dataset's licence",
        "intended_use": "research on 2D breast ultrasound; not for clinical use",
    }
    if cv_summary is not None:
        summary = json.loads(cv_summary.read_text(encoding="utf-8"))
        lesion = summary.get("lesion", {})
        dice = lesion.get("per_image", {}).get("dice", {})
        text = (
            f"{lesion.get('images')} lesion images, per-image Dice {dice.get('mean', float('nan')):.3f} ± "
            f"{dice.get('sd', float('nan')):.3f} (median {dice.get('median', float('nan')):.3f})"
        )
        for group in ("benign", "malignant"):
            if group in summary:
                text += f", {group} {summary[group]['per_image']['dice']['mean']:.3f}"
        if "pooled" in lesion:
            text += f"; pooled Dice {lesion['pooled']['dice']:.3f}"
        if "normal" in summary:
            normal = summary["normal"]
            text += f"; normal images with false positives {normal['images_with_false_positives']}/{normal['images']}"
        card["cross_validation"] = f"{text} ({cv_summary})"
    mask_rule, rule_on_cv = rule
    if rule_on_cv is not None:
        card["mask_rule_on_the_cross_validation"] = rule_on_cv
    for i, note in enumerate(card_notes, start=1):
        card[f"note_{i}"] = note
    seen = frozenset(case_fingerprints(cases))
    path = UltrasoundModel(network, result.state_dict, input_size, card, mask_rule, seen).save(out_dir / "model.pt")
    (out_dir / "model.checkpoint.pt").unlink(missing_ok=True)
    Console().print(f"written {path} ({path.stat().st_size / 1e6:.1f} MB) and its card")
