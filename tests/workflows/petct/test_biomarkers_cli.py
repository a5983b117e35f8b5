"""`breastseg petct biomarkers` end to end on files: a PET in Bq/ml with its PET-info JSON, a lesion mask on a
finer CT grid, a liver mask, and the CT bone fallback — every number checked against a hand calculation."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.image import Image
from breastseg.io import write_image

WEIGHT_KG, HEIGHT_M, DOSE_BQ, HALF_LIFE_S, UPTAKE_S = 70.0, 1.65, 300e6, 6586.2, 3600.0
PET_SPACING = (4.0, 4.0, 4.0)
ORIGIN = (-100.0, -120.0, -60.0)  # LPS x, y, z of voxel 0


def _suv_factor() -> float:
    """Bq/ml → SUVbw by hand: weight in g over the dose decayed to the scan."""
    return WEIGHT_KG * 1000.0 / (DOSE_BQ * 2.0 ** (-UPTAKE_S / HALF_LIFE_S))


def _lbm_kg() -> float:
    """Janmahasatian, female: 9270 × W / (8780 + 244 × BMI)."""
    bmi = WEIGHT_KG / HEIGHT_M**2
    return 9270.0 * WEIGHT_KG / (8780.0 + 244.0 * bmi)


@pytest.fixture()
def case(tmp_path: Path) -> dict[str, Path]:
    shape = (30, 60, 50)
    z, y, x = np.meshgrid(*[np.arange(n) * 4.0 for n in shape], indexing="ij")
    bqml = np.full(shape, 1.0 / _suv_factor())  # background SUV 1
    lesion = (z - 60) ** 2 + (y - 120) ** 2 + (x - 100) ** 2 <= 20.0**2  # 2 cm radius, SUV 6
    bqml[lesion] = 6.0 / _suv_factor()
    pet = Image(bqml.astype(np.float32), PET_SPACING, ORIGIN, modality="PT")
    write_image(pet, tmp_path / "pet.nii.gz")
    info = {
        "patient_weight_kg": WEIGHT_KG,
        "patient_height_m": HEIGHT_M,
        "patient_sex": "F",
        "injected_dose_bq": DOSE_BQ,
        "injection_datetime": "2026-01-05T09:00:00",
        "scan_datetime": "2026-01-05T10:00:00",
        "half_life_s": HALF_LIFE_S,
        "units": "BQML",
    }
    (tmp_path / "pet_info.json").write_text(json.dumps(info))
    # the lesion mask drawn on a CT grid of half the PET's voxel size; every PET voxel centre is a CT voxel
    # centre, so nearest-neighbour resampling must give back exactly the PET-grid sphere
    ct_shape = tuple(2 * n for n in shape)
    ct_origin = ORIGIN
    cz, cy, cx = np.meshgrid(*[np.arange(n) * 2.0 for n in ct_shape], indexing="ij")
    fine = (cz - 60) ** 2 + (cy - 120) ** 2 + (cx - 100) ** 2 <= 20.0**2
    write_image(Image(fine.astype(np.uint8), (2.0, 2.0, 2.0), ct_origin), tmp_path / "lesion_ct_grid.nii.gz")
    # CT: a bone cylinder along z (cortex 700 HU, marrow 40 HU) holding the lesion, soft tissue 40 HU
    hu = np.full(ct_shape, 40.0)
    radius = np.sqrt((cy - 120) ** 2 + (cx - 100) ** 2)
    hu[(radius >= 24) & (radius <= 30)] = 700.0
    write_image(Image(hu.astype(np.float32), (2.0, 2.0, 2.0), ct_origin, modality="CT"), tmp_path / "ct.nii.gz")
    liver = np.zeros(shape, np.uint8)
    liver[5:25, 5:20, 5:20] = 1  # 4500 voxels, away from the lesion
    write_image(Image(liver, PET_SPACING, ORIGIN), tmp_path / "liver.nii.gz")
    return {"dir": tmp_path, "lesion_voxels": int(lesion.sum())}  # type: ignore[dict-item]


def test_biomarkers_from_files_match_the_hand_calculation(case: dict) -> None:
    d = case["dir"]
    args = ["petct", "biomarkers", "--pet", str(d / "pet.nii.gz"), "--pet-info", str(d / "pet_info.json")]
    args += ["--mask", str(d / "lesion_ct_grid.nii.gz"), "--ct", str(d / "ct.nii.gz"), "--bone-from-ct"]
    args += ["--liver-mask", str(d / "liver.nii.gz"), "--out", str(d / "out")]
    assert main(args) == 0
    doc = json.loads((d / "out" / "biomarkers.json").read_text())
    assert doc["lesion_count"] == 1
    assert doc["suv_max"] == pytest.approx(6.0, rel=1e-5) and doc["suv_mean"] == pytest.approx(6.0, rel=1e-5)
    assert doc["mtv_ml"] == pytest.approx(case["lesion_voxels"] * 0.064)
    assert doc["mtv_ml"] == pytest.approx(4 / 3 * math.pi * 2.0**3, rel=0.05)
    assert doc["tlg"] == pytest.approx(doc["mtv_ml"] * 6.0, rel=1e-5)
    # a 1.2 cm sphere fits inside the 4 cm lesion: SULpeak = 6 SUV × LBM / weight
    assert doc["sul_peak"] == pytest.approx(6.0 * _lbm_kg() / WEIGHT_KG, rel=1e-5)
    assert doc["sul_peak_definition"].startswith("study")
    assert all(isinstance(v, int) for v in doc["sul_peak_voxel"])  # indices, not strings
    # bone from CT: the filled cylinder of radius 30 mm over the whole z extent; the lesion lies in it
    assert doc["lesions"][0]["site"] == "bone"
    assert doc["bone_ml"] == pytest.approx(math.pi * 3.0**2 * 12.0, rel=0.08)
    assert doc["pet_bone_index"] == pytest.approx(doc["mtv_ml"] / doc["bone_ml"])
    assert doc["liver_ml"] == pytest.approx(4500 * 0.064) and doc["pet_liver_index"] == 0.0
    with (d / "out" / "lesions.csv").open() as f:
        rows = list(csv.DictReader(f))
    # the centroid in patient LPS mm: origin + (x, y, z) index × spacing
    assert float(rows[0]["centroid_x_mm"]) == pytest.approx(ORIGIN[0] + 100.0, abs=0.5)
    assert float(rows[0]["centroid_y_mm"]) == pytest.approx(ORIGIN[1] + 120.0, abs=0.5)
    assert float(rows[0]["centroid_z_mm"]) == pytest.approx(ORIGIN[2] + 60.0, abs=0.5)


def test_ibsi_peak_is_named_and_missing_tags_are_refused(case: dict, capsys: pytest.CaptureFixture) -> None:
    d = case["dir"]
    base = ["petct", "biomarkers", "--pet", str(d / "pet.nii.gz"), "--mask", str(d / "lesion_ct_grid.nii.gz")]
    assert main([*base, "--pet-info", str(d / "pet_info.json"), "--peak", "ibsi-local", "--out", str(d / "o")]) == 0
    doc = json.loads((d / "o" / "biomarkers.json").read_text())
    assert doc["sul_peak_definition"].startswith("ibsi-local") and doc["pet_bone_index"] is None
    assert main([*base, "--out", str(d / "o2")]) == 2
    assert "no SUV metadata" in capsys.readouterr().err
    info = json.loads((d / "pet_info.json").read_text())
    del info["patient_weight_kg"]
    (d / "no_weight.json").write_text(json.dumps(info))
    assert main([*base, "--pet-info", str(d / "no_weight.json"), "--out", str(d / "o3")]) == 2
    assert "patient_weight_kg" in capsys.readouterr().err
    assert not (d / "o3").exists()  # nothing written on a refused input


def test_a_pet_already_in_suv_needs_no_patient_data_and_its_peak_is_labelled_suvbw(
    case: dict, capsys: pytest.CaptureFixture
) -> None:
    d = case["dir"]
    from breastseg.io import read_image

    pet = read_image(d / "pet.nii.gz")
    write_image(pet.with_array((pet.array * _suv_factor()).astype(np.float32)), d / "suv.nii.gz")  # SUVbw by hand
    base = ["petct", "biomarkers", "--pet", str(d / "suv.nii.gz"), "--mask", str(d / "lesion_ct_grid.nii.gz")]
    assert main([*base, "--pet-units", "suvbw", "--out", str(d / "suv_only")]) == 0  # any letter case
    said = capsys.readouterr().out
    assert "SUVpeak 6.00 on SUVbw (no SUL" in said
    doc = json.loads((d / "suv_only" / "biomarkers.json").read_text())
    # SUV-based values as the hand calculation gives them; every SUL value left out, and why
    assert doc["suv_peak"] == pytest.approx(6.0, rel=1e-5) and doc["suv_max"] == pytest.approx(6.0, rel=1e-5)
    assert doc["mtv_ml"] == pytest.approx(case["lesion_voxels"] * 0.064)
    assert doc["sul_peak"] is None and doc["lesions"][0]["sul_peak"] in ("", None)
    assert doc["units"]["sul"] == "not available" and "height" in doc["sul_missing"]
    # a PET info with only the patient gives the same PET its SUL (no dose or times needed for SUVbw)
    (d / "patient.json").write_text(
        json.dumps({"units": "SUVbw", "patient_weight_kg": WEIGHT_KG, "patient_height_m": HEIGHT_M, "patient_sex": "F"})
    )
    assert main([*base, "--pet-info", str(d / "patient.json"), "--out", str(d / "with_sul")]) == 0
    doc = json.loads((d / "with_sul" / "biomarkers.json").read_text())
    assert doc["sul_peak"] == pytest.approx(6.0 * _lbm_kg() / WEIGHT_KG, rel=1e-5) and doc["sul_missing"] is None
    assert doc["suv_peak"] == pytest.approx(6.0, rel=1e-5)


def test_a_bqml_pet_info_names_every_missing_item_at_once(case: dict, capsys: pytest.CaptureFixture) -> None:
    d = case["dir"]
    (d / "thin.json").write_text(json.dumps({"patient_weight_kg": WEIGHT_KG, "units": "BQML"}))
    args = ["petct", "biomarkers", "--pet", str(d / "pet.nii.gz"), "--mask", str(d / "lesion_ct_grid.nii.gz")]
    assert main([*args, "--pet-info", str(d / "thin.json"), "--out", str(d / "o")]) == 2
    err = capsys.readouterr().err
    assert "injected_dose_bq, injection_datetime, scan_datetime" in err and "SUVbw" in err
