"""The synthetic study cohort: layout, tumour-type presets, shared specimens and the margins it promises."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.io import read_image
from breastseg.masks import depth_below_surface_mm
from breastseg.phantoms.specimen import TUMOUR_TYPE_PRESETS
from breastseg.phantoms.specimen_cohort import (
    DEFAULT_SPECIMEN_MARGINS_MM,
    CohortConfig,
    specimen_margins,
    write_cohort,
)
from breastseg.workflows.specimen.cohort import read_specimen_manifest
from breastseg.workflows.specimen.lamellae import read_manifest


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort")
    cfg = CohortConfig(
        nst_patients=3,
        ilc_patients=1,
        dcis_patients=1,
        lamellae_per_patient=1,
        specimen_margins_mm=(None, 1.0),
        shared_specimens=1,
        ct_spacing_mm=0.5,
        pet_spacing_mm=1.0,
    )
    write_cohort(out, cfg)
    return out


def test_lamella_manifest_lists_every_patient_with_its_type(cohort: Path) -> None:
    rows = read_manifest(cohort / "lamellae" / "manifest.csv")
    types = {r["patient_id"]: r["tumour_type"] for r in rows}
    assert types == {"nst000": "NST", "nst001": "NST", "nst002": "NST", "ilc000": "ILC", "dcis000": "DCIS"}
    for row in rows:
        assert Path(row["ct"]).is_file() and Path(row["label"]).is_file()


def test_tumour_type_presets_reach_the_phantoms(cohort: Path) -> None:
    doc = json.loads((cohort / "cohort.json").read_text())
    assert doc["synthetic"] is True
    # regenerate nothing: the lamella label of the DCIS patient is smaller than the NST ones' on average
    rows = read_manifest(cohort / "lamellae" / "manifest.csv")
    area = {r["patient_id"]: int((read_image(r["label"]).array == 1).sum()) for r in rows}
    assert area["dcis000"] < np.mean([area["nst000"], area["nst001"], area["nst002"]])
    assert TUMOUR_TYPE_PRESETS["DCIS"]["tumour_diameter_mm"] < 12.0


def test_specimens_carry_true_margins_and_the_shared_patient(cohort: Path) -> None:
    cases = read_specimen_manifest(cohort / "specimens" / "manifest.csv")
    assert [c.positive for c in cases] == [True, False]
    assert cases[0].patient_id == "nst000"  # the first lamella patient's own 3D specimen
    assert cases[1].patient_id.startswith("spec")
    for case in cases:
        tumour = read_image(case.tumour).array > 0
        specimen = read_image(case.tumour.parent / "specimen.nii.gz")
        depth = depth_below_surface_mm(specimen.array > 0, specimen.spacing)
        assert float(depth[tumour].min()) == pytest.approx(case.margin_mm, abs=1e-3)
        assert (case.margin_mm <= 0.1) == case.positive


def test_specimen_margins_spread() -> None:
    assert specimen_margins(20) == DEFAULT_SPECIMEN_MARGINS_MM
    for n in (1, 5, 13, 40):
        margins = specimen_margins(n)
        assert len(margins) == n and sum(m is None for m in margins) == round(0.4 * n)
        assert all(0.5 <= m <= 5.0 for m in margins if m is not None)


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_specimen_manifest_errors_name_file_and_line(tmp_path: Path, cohort: Path) -> None:
    good = {
        "case_id": "a",
        "patient_id": "p",
        "tumour_type": "NST",
        "ct": str(cohort / "specimens" / "case000" / "ct.nii.gz"),
        "pet": str(cohort / "specimens" / "case000" / "pet.nii.gz"),
        "margin_status": "positive",
    }
    with pytest.raises(InputError, match=r"bad.csv, line 2: margin_status"):
        read_specimen_manifest(_write_manifest(tmp_path / "bad.csv", [{**good, "margin_status": "close"}]))
    with pytest.raises(InputError, match=r"missing.csv, line 2: pet file .* does not exist"):
        read_specimen_manifest(_write_manifest(tmp_path / "missing.csv", [{**good, "pet": "nowhere.nii.gz"}]))
    with pytest.raises(InputError, match=r"lacks columns \['margin_status'\]"):
        read_specimen_manifest(
            _write_manifest(tmp_path / "cols.csv", [{k: v for k, v in good.items() if k != "margin_status"}])
        )
    assert read_specimen_manifest(_write_manifest(tmp_path / "ok.csv", [good]))[0].positive


def test_a_version_2_cohort_bread_loafs_its_lamellae(tmp_path: Path) -> None:
    cfg = CohortConfig(
        nst_patients=2,
        lamellae_per_patient=1,
        specimen_margins_mm=(None,),
        shared_specimens=0,
        ct_spacing_mm=0.5,
        pet_spacing_mm=1.0,
        phantom_version=2,
    )
    paths = write_cohort(tmp_path, cfg)
    rows = read_manifest(paths["lamellae"])
    # ~26 mm specimens cut every 2.5 mm: far more than the one slice per patient a version-1 cohort would cut
    assert all(sum(r["patient_id"] == p for r in rows) >= 8 for p in ("nst000", "nst001"))
    doc = json.loads(paths["cohort"].read_text())
    assert doc["config"]["phantom_version"] == 2
    truth = json.loads((tmp_path / "specimens" / "case000" / "truth.json").read_text())
    assert truth["phantom_version"] == 2 and "confounder_volumes_ml" in truth


def test_the_command_reports_the_positives_the_truths_hold(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Specimens of lamella patients keep that patient's margin, so the count asked for is not the count made: 4
    specimens ask for (positive, positive, 0.5, 2.0 mm), but the first 3 are the lamella patients' (positive, 1, 3 mm)
    — 1 positive, which the command must print (it printed the 2 asked for)."""
    from breastseg.cli.main import main

    args = ["phantom", "specimen-cohort", "--out", str(tmp_path), "--nst", "3", "--lamellae", "1"]
    assert main([*args, "--specimens", "4", "--shared", "3", "--ct-spacing-mm", "0.5", "--pet-spacing-mm", "1.0"]) == 0
    truths = [json.loads(p.read_text()) for p in sorted((tmp_path / "specimens").glob("case*/truth.json"))]
    assert [t["margin_status"] for t in truths] == ["positive", "negative", "negative", "negative"]
    assert "4 (1 positive, 3 from lamella patients)" in capsys.readouterr().out


def test_a_smaller_cohort_written_over_a_larger_one_leaves_no_stale_cases(tmp_path: Path) -> None:
    """Re-running with fewer specimens and patients removes the earlier cohort's extra case and patient folders
    (what breastseg wrote in them), keeps a file the user put in one, and keeps folders breastseg never wrote."""
    small = {"ct_spacing_mm": 0.5, "pet_spacing_mm": 1.0, "lamellae_per_patient": 1, "shared_specimens": 0}
    write_cohort(tmp_path, CohortConfig(nst_patients=2, specimen_margins_mm=(None, 1.0, 2.0), **small))
    spec, lam = tmp_path / "specimens", tmp_path / "lamellae"
    assert {p.name for p in spec.iterdir() if p.is_dir()} == {"case000", "case001", "case002"}
    (spec / "case001" / "my_notes.txt").write_text("the user's", encoding="utf-8")
    (spec / "case009").mkdir()  # not breastseg's
    (spec / "case009" / "scan.nii.gz").write_bytes(b"x")

    write_cohort(tmp_path, CohortConfig(nst_patients=1, specimen_margins_mm=(None,), **small))

    rows = list(csv.DictReader((spec / "manifest.csv").open(encoding="utf-8")))
    assert [r["case_id"] for r in rows] == ["case000"]
    assert not (spec / "case002").exists()
    assert sorted(p.name for p in (spec / "case001").iterdir()) == ["my_notes.txt"]
    assert (spec / "case009" / "scan.nii.gz").read_bytes() == b"x"
    assert not (lam / "nst001").exists() and (lam / "nst000" / "manifest.csv").is_file()
    assert len(json.loads((tmp_path / "cohort.json").read_text())["specimens"]) == 1
