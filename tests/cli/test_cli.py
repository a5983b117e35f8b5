"""The command line: version, help, placeholder groups, the phantom command and error handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_top_level_help_names_every_command_group(capsys: pytest.CaptureFixture[str]) -> None:
    from breastseg.cli.main import cli

    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    overview = text[text.index("Workflows:") : text.index("Start here:")]  # the guide above click's own list
    listed = {line.split()[0] for line in overview.splitlines() if line.startswith("    ") and line.strip()}
    assert set(cli.commands) <= listed, set(cli.commands) - listed


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


def test_bread_loafing_lamellae_and_training_options_reach_the_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import csv

    from breastseg.workflows.specimen.bundle import ModelBundle

    args = ["phantom", "specimen", *SMALL_PHANTOM_ARGS]
    assert main([*args, "--out", str(tmp_path / "both"), "--lamellae", "2", "--bread-loaf"]) == 2
    assert "either --lamellae N" in capsys.readouterr().err
    manifests = []
    for seed in (6, 7):
        assert main([*args, "--seed", str(seed), "--out", str(tmp_path / f"loaf{seed}"), "--bread-loaf"]) == 0
        manifests += ["--manifest", str(tmp_path / f"loaf{seed}" / "lamellae" / "manifest.csv")]
    with Path(manifests[1]).open() as fh:
        z = [float(r["z_mm"]) for r in csv.DictReader(fh)]
    # a slice every 2.5 mm (to within a 0.4 mm voxel) across the ~26 mm specimen
    assert all(abs(d - 2.5) <= 0.31 for d in np.diff(z)) and len(z) >= 8
    model = tmp_path / "tiny.pt"
    train = ["specimen", "train", *manifests, "--folds", "2", "--epochs", "1", "--depth", "2"]
    train += ["--channels", "4", "--patch-size", "32", "--patches-per-image", "1", "--loss", "dice_ce"]
    assert main([*train, "--positive-bias", "0.2", "--ct-percentiles", "1", "99", "--out", str(model)]) == 0
    card = ModelBundle.load(model).card["training"]
    assert card["train"]["loss"] == "dice_ce" and card["train"]["patch"]["positive_bias"] == 0.2
    assert list(card["ct_percentiles"]) == [1.0, 99.0]
    assert "(percentiles 1 and 99 of the training foreground)" in model.with_suffix(".card.md").read_text()


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


def test_the_python_api_names_each_command_function_and_stays_light() -> None:
    """``breastseg.<command function>`` is the function the command calls; importing breastseg loads no torch."""
    code = (
        "import sys, breastseg; light = 'torch' not in sys.modules; "
        "from breastseg.workflows.petct.scan import measure_scan; "
        "print(light, breastseg.measure_scan is measure_scan, sorted(breastseg.COMMANDS) == sorted("
        "n for n in breastseg.__all__ if n in breastseg.COMMANDS))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"]
    import breastseg

    for name, module in breastseg.COMMANDS.items():
        assert getattr(breastseg, name).__module__ == module
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        breastseg.nope  # noqa: B018
