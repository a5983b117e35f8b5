"""``breastseg batch WORKFLOW``: a cohort manifest through one workflow, locally or on a Dask cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from breastseg.batch.engine import BatchResult, run_batch
from breastseg.batch.manifest import read_manifest
from breastseg.cli.options import device_option, peak_option, scheduler_option
from breastseg.cli.outputs import OVERWRITE_HELP
from breastseg.errors import BreastsegError
from breastseg.progress import bar


def _common(f: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--manifest",
                required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="CSV, one row per case: case_id, the workflow's input columns (paths relative to the CSV), "
                "other columns copied to the cohort table as ref_<name>.",
            ),
            click.option(
                "--out",
                "out_dir",
                required=True,
                type=click.Path(file_okay=False, path_type=Path),
                help="Cohort folder: OUT/<case_id>/ per case, OUT/cohort.csv, OUT/summary.json.",
            ),
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=None,
                help="Local worker processes, each loading the model once; 1 runs in this process. "
                "[default: one per CPU core]",
            ),
            scheduler_option,
            click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP),
        ]
    ):
        f = option(f)
    return f


def _run(
    runner: Any, manifest: Path, out_dir: Path, workers: int | None, scheduler: str | None, overwrite: bool
) -> BatchResult:
    cases = read_manifest(manifest, runner.path_columns, runner.required)
    workers = workers or os.cpu_count() or 1
    console = Console(stderr=True)
    with bar(f"{runner.name} cohort", total=len(cases)) as shown:

        def advance(record: dict[str, Any]) -> None:
            if record["status"] != "done":
                console.print(f"[red]{record['case_id']} failed:[/] {record['error']}")
            shown.update(advance=1, info=f"last: {record['case_id']}")

        result = run_batch(
            runner,
            cases,
            out_dir,
            workers=workers,
            scheduler=scheduler,
            progress=advance,
            overwrite=overwrite,
            manifest=manifest,
        )
    table = Table(title=f"breastseg batch {runner.name}", show_header=False)
    table.add_row("cases", str(len(cases)))
    table.add_row("ran / skipped (unchanged)", f"{result.ran} / {result.skipped}")
    table.add_row("failed", f"[red]{result.failed}[/]" if result.failed else "0")
    table.add_row("time", f"{result.seconds:.1f} s ({60 * result.ran / max(result.seconds, 1e-9):.1f} cases/min)")
    table.add_row("cohort table", str(out_dir / "cohort.csv"))
    table.add_row("summary", str(out_dir / "summary.json"))
    Console().print(table)
    if result.failed and result.failed == len(cases):
        raise BatchFailed(f"every case failed ({result.failed}); each one's error is in {out_dir / 'cohort.csv'}")
    if result.failed:
        raise click.exceptions.Exit(1)
    return result


class BatchFailed(BreastsegError):
    """No case of a cohort could be run."""


@click.group()
def batch() -> None:
    """Run a workflow over a cohort: local processes by default, a Dask cluster with --scheduler.

    Failed cases are recorded with their error and the run goes on; a rerun skips the cases whose inputs, model
    and options are unchanged and retries the failed ones. Exit code: 0 every case done, 1 some cases failed
    (the others' results are written), 2 every case failed or the manifest or options are wrong.
    """


@batch.command("specimen")
@_common
@click.option("--method", type=click.Choice(["threshold", "resunet"]), default="threshold", show_default=True)
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None, help="Model file.")
@click.option("--positive-margin-mm", type=click.FloatRange(min=0.0), default=0.1, show_default=True)
def batch_specimen(
    manifest: Path,
    out_dir: Path,
    workers: int | None,
    scheduler: str | None,
    overwrite: bool,
    method: str,
    model: str | None,
    positive_margin_mm: float,
) -> None:
    """Margin assessment of every specimen (`specimen assess` per case).

    Manifest columns: case_id, ct, pet (required), pet_info, patient_id (leakage guard); margin_status and
    margin_mm as references give the cohort's margin table (sensitivity, specificity) in summary.json.
    `breastseg phantom specimen-cohort` writes such a manifest (specimens/manifest.csv).

    \b
    Example:
      breastseg phantom specimen-cohort --out cohort --nst 3 --specimens 12
      breastseg batch specimen --manifest cohort/specimens/manifest.csv --out margins --workers 2
    """
    from breastseg.batch.runners import SpecimenRunner
    from breastseg.workflows.specimen.pipeline import AssessConfig

    config = AssessConfig(
        method="resunet" if method == "resunet" else "threshold",
        model=model,
        positive_margin_mm=positive_margin_mm,
    )
    _run(SpecimenRunner(config), manifest, out_dir, workers, scheduler, overwrite)


@batch.command("petct")
@_common
@peak_option
def batch_petct(
    manifest: Path, out_dir: Path, workers: int | None, scheduler: str | None, overwrite: bool, peak_definition: str
) -> None:
    """PET biomarkers of every scan (`petct biomarkers` per case).

    Manifest columns: case_id, pet, mask (required), pet_info, liver_mask, bone_mask. summary.json has the median
    and interquartile range of lesion count, SULpeak, SUVmax, MTV and TLG.
    """
    from breastseg.batch.runners import PetctRunner

    _run(PetctRunner(peak_definition), manifest, out_dir, workers, scheduler, overwrite)


@batch.command("response")
@_common
@peak_option
@click.option("--mask-name", default="lesions.nii.gz", show_default=True, help="Lesion mask file in each scan folder.")
@click.option(
    "--new-lesion-tolerance-mm",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="A follow-up lesion farther than this from every registered baseline lesion is new.",
)
def batch_response(
    manifest: Path,
    out_dir: Path,
    workers: int | None,
    scheduler: str | None,
    overwrite: bool,
    peak_definition: str,
    mask_name: str,
    new_lesion_tolerance_mm: float,
) -> None:
    """Treatment response of every patient (`petct response` per case).

    Manifest columns: case_id, baseline, followup (scan folders); percist (CMR/PMR/SMD/PMD) as the reference gives
    summary.json the response analysis (ROC of each biomarker's change against PERCIST responders, AUC with
    DeLong's CI, Youden cut-off) and the agreement of the automatic category with it.
    """
    from breastseg.batch.runners import ResponseRunner

    _run(
        ResponseRunner(peak_definition, mask_name, new_lesion_tolerance_mm),
        manifest,
        out_dir,
        workers,
        scheduler,
        overwrite,
    )


@batch.command("mri")
@_common
@click.option("--model", required=True, type=click.Path(exists=True, dir_okay=False), help="MRI model (mri train).")
@click.option("--fraction", type=click.FloatRange(0.0, 1.0), default=0.6, show_default=True, help="As mri segment.")
@device_option
def batch_mri(
    manifest: Path,
    out_dir: Path,
    workers: int | None,
    scheduler: str | None,
    overwrite: bool,
    model: str,
    fraction: float,
    device: str,
) -> None:
    """Tumour segmentation of every DCE-MRI exam (`mri segment --exam` per case).

    Manifest columns: case_id, exam (folder, required), reference (a tumour mask: adds Dice). summary.json has the
    median and IQR of volume, longest diameter, functional volume and Dice, and the kinetic curve types.
    """
    from breastseg.batch.runners import MriRunner

    _run(MriRunner(model, fraction, device), manifest, out_dir, workers, scheduler, overwrite)


@batch.command("ultrasound")
@_common
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None, help="Default: packaged.")
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Probability cut; default: the model's mask rule (see its card).",
)
@click.option("--flip/--no-flip", default=True, show_default=True, help="Left-right test-time augmentation.")
def batch_ultrasound(
    manifest: Path,
    out_dir: Path,
    workers: int | None,
    scheduler: str | None,
    overwrite: bool,
    model: str | None,
    threshold: float | None,
    flip: bool,
) -> None:
    """Lesion masks of every ultrasound image (`ultrasound predict` per case).

    Manifest columns: case_id, image (required), mask (a reference mask of the same size: adds Dice).
    """
    from breastseg.batch.runners import UltrasoundRunner

    _run(UltrasoundRunner(model, threshold, flip), manifest, out_dir, workers, scheduler, overwrite)
