"""``breastseg evaluate``: score predictions against references."""

from __future__ import annotations

import json
from pathlib import Path

import click

from breastseg.cli.options import existing_path
from breastseg.errors import InputError
from breastseg.evaluation.compare import compare_masks
from breastseg.io import read_image


def _spacing(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise InputError(f"--spacing-mm takes numbers separated by commas (y,x), got {text!r}") from exc


@click.group()
def evaluate() -> None:
    """Score segmentations against references (metrics as JSON)."""


@evaluate.command("seg")
@click.option(
    "--pred",
    "pred_path",
    required=True,
    type=existing_path,
    help="Predicted mask (NIfTI, NRRD, MHA, PNG, npz or a DICOM folder).",
)
@click.option(
    "--ref",
    "ref_path",
    required=True,
    type=existing_path,
    help="Reference mask on the same grid.",
)
@click.option(
    "--tolerance-mm", type=click.FloatRange(min=0.0), default=1.0, show_default=True, help="Surface Dice tolerance, mm."
)
@click.option("--label", type=int, default=None, help="Compare only this label value (default: any non-zero).")
@click.option(
    "--ignore-label",
    type=int,
    default=None,
    help="Reference value meaning 'unknown', excluded from the scores (lamella maps: 2).",
)
@click.option("--spacing-mm", default=None, help="Pixel size 'y,x' in mm for PNG/JPEG masks, which do not store it.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON to this file.",
)
def seg(
    pred_path: Path,
    ref_path: Path,
    tolerance_mm: float,
    label: int | None,
    ignore_label: int | None,
    spacing_mm: str | None,
    out_path: Path | None,
) -> None:
    """Dice, HD95, surface Dice, precision, recall and volumes of one predicted mask.

    \b
    Example:
      breastseg evaluate seg --pred pred.nii.gz --ref tumour.nii.gz --tolerance-mm 1
    Empty masks are scored, not skipped: both empty gives Dice 1; one empty gives Dice 0 and HD95 equal to
    the image diagonal (flagged "hd95_defined": false).
    """
    spacing = _spacing(spacing_mm)
    pred = read_image(pred_path, spacing=spacing)
    ref = read_image(ref_path, spacing=spacing)
    result = compare_masks(
        pred,
        ref,
        tolerance_mm=tolerance_mm,
        label=label,
        ignore_label=ignore_label,
        pred_name=str(pred_path),
        ref_name=str(ref_path),
    ).to_json()
    text = json.dumps(result, indent=2)
    if out_path is not None:
        from breastseg.io.atomic import write_json

        write_json(result, out_path)
    click.echo(text)
