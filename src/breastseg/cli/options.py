"""Click parameter types and options shared by the command groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

existing_path = click.Path(exists=True, path_type=Path)
existing_folder = click.Path(exists=True, file_okay=False, path_type=Path)
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (a CUDA GPU when present, else the CPU), cpu, cuda or cuda:N.",
)


def dicom_out_option(what: str) -> Callable[[F], F]:
    """``--dicom-out DIR``: also write DICOM results for the PACS (``what`` says which files)."""
    return click.option(
        "--dicom-out",
        "dicom_out",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Also write DICOM for the PACS here: {what}",
    )


pet_units_option = click.option(
    "--pet-units",
    type=click.Choice(["BQML", "SUVbw", "SUL"], case_sensitive=False),
    default=None,
    help="What a NIfTI/NRRD PET's values are (the file cannot say; DICOM says it itself): Bq/ml, SUVbw (as "
    "public whole-body data such as autoPET's SUV.nii.gz come; needs no dose or times) or SUL; any letter case.",
)

peak_option = click.option(
    "--peak",
    "peak_definition",
    type=click.Choice(["study", "ibsi-global", "ibsi-local"]),
    default="study",
    show_default=True,
    help="SULpeak definition: the study's (1.2 cm sphere, best centre among lesion voxels) or IBSI's 1 cm3 "
    "global / local (at the hottest voxel) peak.",
)


scheduler_option = click.option(
    "--scheduler",
    default=None,
    help="Run on a Dask cluster, e.g. tcp://10.0.0.5:8786 (workers: `dask worker ADDRESS --nthreads 1`, seeing the "
    "inputs and outputs at the same paths).",
)
