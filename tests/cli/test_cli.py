"""The command line: version, help, placeholder groups, the phantom command and error handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from breastseg import __version__
from breastseg.cli.main import main
from tests.conftest import SMALL_PHANTOM_ARGS

BIN = Path(sys.executable).parent / "breastseg"


def test_version_and_help_through_the_console_script() -> None:
    out = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"breastseg, version {__version__}"
    helped = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, check=True)
    for group in ("specimen", "petct", "mri", "ultrasound", "phantom"):
        assert group in helped.stdout


def test_phantom_specimen_writes_the_promised_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(
        [
            "phantom",
            "specimen",
            "--out",
            str(tmp_path),
            "--seed",
            "5",
            "--positive",
            *SMALL_PHANTOM_ARGS,
            "--lamellae",
            "2",
        ]
    )
    assert rc == 0
    for name in ("ct.nii.gz", "pet.nii.gz", "tumour.nii.gz", "specimen.nii.gz", "truth.json"):
        assert (tmp_path / name).is_file(), name
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["margin_status"] == "positive" and truth["margin_mm"] == 0.0
    assert (tmp_path / "lamellae" / "manifest.csv").is_file()
    assert "positive" in capsys.readouterr().out


def test_user_error_is_one_line_on_stderr_with_exit_code_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(BIN), "phantom", "specimen", "--out", str(tmp_path), "--positive", "--margin-mm", "1"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "breastseg: error: give either --margin-mm or --positive, not both"
    assert "Traceback" not in out.stderr


def test_impossible_phantom_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["phantom", "specimen", "--out", str(tmp_path), "--tumour-diameter-mm", "60"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("breastseg: error: tumour diameter 60.0 mm does not fit")
    assert len(err.strip().splitlines()) == 1


def test_the_command_line_starts_without_the_network_stack() -> None:
    """torch, MONAI and Optuna take seconds to import; --help and the threshold method must not pay for them."""
    code = (
        "import sys, breastseg.cli.main, breastseg.workflows.specimen.pipeline; "
        "print(sorted(m for m in ('torch', 'monai', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
