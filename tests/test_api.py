"""The top-level Python API: one call per command, and each call writes what its command writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import breastseg
from breastseg.cli.main import main
from breastseg.io import read_image
from tests.conftest import SMALL_PHANTOM_ARGS
from tests.reliability.conftest import assess_argv


def _without_paths(doc: dict) -> dict:
    """A result document without what names its own run (input and output paths, times)."""
    return {k: v for k, v in doc.items() if k not in ("provenance", "inputs", "outputs", "written", "seconds")}


def test_each_workflow_is_a_module_of_calls_and_import_stays_light() -> None:
    code = "import sys, breastseg; s = breastseg.specimen; print('torch' not in sys.modules, callable(s.assess))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
    assert {n for n in breastseg.WORKFLOWS} <= set(breastseg.__all__)
    assert breastseg.petct.__all__ == ["biomarkers", "evaluate", "response"]


def test_specimen_assess_from_python_equals_the_command(tmp_path: Path) -> None:
    case = tmp_path / "case"
    assert main(["phantom", "specimen", "--out", str(case), "--seed", "4", *SMALL_PHANTOM_ARGS]) == 0
    assert main(assess_argv(case, tmp_path / "cli")) == 0
    result = breastseg.specimen.assess(
        case / "ct.nii.gz", case / "pet.nii.gz", tmp_path / "api", pet_info=case / "truth.json"
    )
    cli = json.loads((tmp_path / "cli" / "result.json").read_text())
    api = json.loads((tmp_path / "api" / "result.json").read_text())
    same = ("margin_status", "min_margin_mm", "per_face_margin_mm", "margin_interval_mm", "tumour_volume_ml")
    assert {k: cli[k] for k in same} == {k: api[k] for k in same} == {k: result.to_json()[k] for k in same}
    for name in ("tumour_mask.nii.gz", "specimen_mask.nii.gz"):
        np.testing.assert_array_equal(
            read_image(tmp_path / "api" / name).array, read_image(tmp_path / "cli" / name).array
        )


def test_petct_biomarkers_and_response_from_python_equal_the_commands(tmp_path: Path) -> None:
    patient = tmp_path / "patient"
    args = ["phantom", "petct", "--out", str(patient), "--seed", "2", "--lesions", "3"]
    assert main([*args, "--ct-spacing-mm", "5", "--pet-spacing-mm", "8"]) == 0
    base = patient / "baseline"
    inputs = ["--pet", str(base / "pet.nii.gz"), "--pet-info", str(base / "truth.json")]
    mask = ["--mask", str(base / "lesions.nii.gz")]
    assert main(["petct", "biomarkers", *inputs, *mask, "--out", str(tmp_path / "b1")]) == 0
    scan = breastseg.petct.biomarkers(
        base / "pet.nii.gz", base / "lesions.nii.gz", tmp_path / "b2", pet_info=base / "truth.json"
    )
    a, b = (json.loads((tmp_path / d / "biomarkers.json").read_text()) for d in ("b1", "b2"))
    assert _without_paths(a) == _without_paths(b) and b["sul_peak"] == scan.biomarkers.sul_peak
    command = ["petct", "response", "--baseline", str(base), "--followup", str(patient / "followup")]
    assert main([*command, "--out", str(tmp_path / "r1")]) == 0
    assessed = breastseg.petct.response(base, patient / "followup", tmp_path / "r2")
    a, b = (json.loads((tmp_path / d / "response.json").read_text()) for d in ("r1", "r2"))
    assert a["percist"] == b["percist"] and assessed.percist.category == b["percist"]["category"]
