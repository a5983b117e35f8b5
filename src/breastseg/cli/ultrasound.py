"""``breastseg ultrasound``: breast-tumour masks on 2D ultrasound (Yao et al. 2026; public data: BUSI)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from breastseg.learn.duplicates import DHASH_MAX_DISTANCE, PHASH_MAX_DISTANCE
from breastseg.workflows.ultrasound.dataset import read_dataset
from breastseg.workflows.ultrasound.split import make_split, write_split


@click.group()
def ultrasound() -> None:
    """Breast-ultrasound tumour segmentation: dataset split, training, evaluation, prediction.

    \b
    Datasets: BUSI's folders (benign/ malignant/ normal/ with NAME.png + NAME_mask.png), an images/ + masks/
    pair, or an nnU-Net v2 raw dataset (imagesTr/CASE_0000.png, labelsTr/CASE.png, dataset.json).
    """


@ultrasound.command("split")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Dataset folder (BUSI, images/ + masks/, or nnU-Net raw).",
)
@click.option(
    "--masks",
    "masks_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Masks folder, when --data is a plain images folder.",
)
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
    columns = (TextColumn("hashing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("hash", total=len(cases))
        result = make_split(cases, folds, seed, phash_max, dhash_max, lambda done, _n: bar.update(task, completed=done))
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
