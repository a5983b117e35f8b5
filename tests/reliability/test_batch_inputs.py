"""Cohort runs: a manifest from a spreadsheet, hostile cells, case folders that would hit inputs, exit codes."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from breastseg.cli.main import main
from breastseg.io.tables import csv_cell
from tests.reliability.conftest import tree_digest


def _manifest(path: Path, rows: list[dict[str, str]], bom: bool = False) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _case(root: Path, source: Path, name: str, prefix: str = "") -> dict[str, str]:
    """Copy the phantom's inputs to ``root/name``; their paths as a manifest in ``root/prefix/..`` names them."""
    folder = root / name
    folder.mkdir(parents=True)
    for f in ("ct.nii.gz", "pet.nii.gz", "truth.json"):
        shutil.copy2(source / f, folder / f)
    rel = f"{prefix}{name}"
    return {"ct": f"{rel}/ct.nii.gz", "pet": f"{rel}/pet.nii.gz", "pet_info": f"{rel}/truth.json"}


def test_bom_manifest_formula_cells_and_partial_failure(
    specimen_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = _case(tmp_path / "data", specimen_case, "p1")
    broken = tmp_path / "data" / "broken.nii.gz"
    broken.write_bytes(b"not an image")
    rows = [
        {"case_id": "c1", **good, "note": '=HYPERLINK("http://x","click")', "margin_mm": "-0.5"},
        {"case_id": "c2", **{**good, "ct": "broken.nii.gz"}, "note": "@SUM(A1)", "margin_mm": "2"},
    ]
    manifest = _manifest(tmp_path / "data" / "manifest.csv", rows, bom=True)
    out = tmp_path / "out"
    assert main(["batch", "specimen", "--manifest", str(manifest), "--out", str(out), "--workers", "1"]) == 1
    with (out / "cohort.csv").open(newline="", encoding="utf-8") as fh:
        table = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert table["c1"]["status"] == "done" and table["c2"]["status"] == "failed"
    assert table["c1"]["ref_note"].startswith("'=") and table["c2"]["ref_note"] == "'@SUM(A1)"
    assert table["c1"]["ref_margin_mm"] == "-0.5"  # a number stays a number


def test_every_case_failing_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.nii.gz").write_bytes(b"no")
    rows = [{"case_id": f"c{k}", "ct": "bad.nii.gz", "pet": "bad.nii.gz"} for k in range(2)]
    manifest = _manifest(tmp_path / "m.csv", rows)
    assert main(["batch", "specimen", "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--workers", "1"]) == 2
    assert "every case failed (2)" in capsys.readouterr().err


def test_a_case_folder_that_is_an_input_folder_is_refused(
    specimen_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "data"
    row = {"case_id": "p1", **_case(data, specimen_case, "p1", prefix="data/")}
    manifest = _manifest(tmp_path / "manifest.csv", [row])
    before = tree_digest(data)
    argv = ["batch", "specimen", "--manifest", str(manifest), "--out", str(data), "--workers", "1"]
    assert main(argv) == 2  # data/ holds files breastseg did not write
    assert "did not write (p1)" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 2  # and case p1's folder would be its input folder data/p1
    assert "case p1's folder" in capsys.readouterr().err
    assert tree_digest(data) == before


def test_csv_cell_escapes_formulas_but_not_numbers() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+A1", "-A1", "@x", "\t=1", "-0.5", "+3e-2", "plain", None, 3.5)] == [
        "'=1+1",
        "'+A1",
        "'-A1",
        "'@x",
        "'\t=1",
        "-0.5",
        "+3e-2",
        "plain",
        "",
        3.5,
    ]
