"""The base install (no optional extras) runs every workflow's single-case command, and a command that needs an
extra names the one to install instead of raising ImportError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import SMALL_PHANTOM_ARGS

#: top-level modules of the optional extras (pyproject.toml), blocked as if never installed
BLOCKED = ("optuna", "sqlalchemy", "dask", "distributed", "pynetdicom", "fastapi", "uvicorn", "psycopg")

_RUNNER = """
import importlib.abc, json, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from breastseg.cli.main import main
codes = [main(args) for args in json.loads(sys.argv[2])]
sys.exit(max(codes))
"""


def _without_extras(*commands: list[str]) -> subprocess.CompletedProcess[str]:
    """Run breastseg ``commands`` one after another in one Python process where the extras cannot be imported;
    the exit code is the highest of theirs."""
    command = [sys.executable, "-c", _RUNNER, ",".join(BLOCKED), json.dumps(commands)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_every_command_helps_without_the_extras() -> None:
    commands = [
        ["specimen", "assess"],
        ["petct", "biomarkers"],
        ["petct", "response"],
        ["mri", "segment"],
        ["ultrasound", "predict"],
        ["evaluate", "seg"],
        ["specimen", "search"],
        ["serve", "web"],
    ]
    done = _without_extras(*[[*c, "--help"] for c in commands])
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Usage: breastseg") == len(commands)


def test_a_single_case_assessment_runs_without_the_extras(tmp_path: Path) -> None:
    p = tmp_path / "p"
    done = _without_extras(
        ["phantom", "specimen", "--out", str(p), "--seed", "3", *SMALL_PHANTOM_ARGS],
        ["specimen", "assess", "--ct", str(p / "ct.nii.gz"), "--pet", str(p / "pet.nii.gz"),
         "--pet-info", str(p / "truth.json"), "--method", "threshold", "--out", str(tmp_path / "a")],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert result["margin_status"] in ("positive", "negative")


def test_commands_that_need_an_extra_say_which(tmp_path: Path) -> None:
    lamellae = tmp_path / "lamellae.csv"
    lamellae.write_text("patient_id,ct,pet,label\n")
    done = _without_extras(
        ["serve", "web", "--store", str(tmp_path)], ["specimen", "search", "--manifest", str(lamellae)]
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2, errors
    assert "fastapi is not installed" in errors[0] and "pip install 'breastseg[service]'" in errors[0]
    assert "optuna is not installed" in errors[1] and "pip install 'breastseg[search]'" in errors[1]
