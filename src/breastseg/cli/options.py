"""Click parameter types and options shared by the command groups."""

from __future__ import annotations

from pathlib import Path

import click

existing_path = click.Path(exists=True, path_type=Path)
existing_folder = click.Path(exists=True, file_okay=False, path_type=Path)
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (a CUDA GPU when present, else the CPU), cpu, cuda or cuda:N.",
)
