"""SUV: real vendor header extracts (QIBA pseudo-code), Janmahasatian by hand, and bad headers."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.dicom_meta import PHILIPS_PET_CREATOR, pet_info
from breastseg.suv import (
    decay_time_s,
    lean_body_mass_kg,
    pet_info_from_values,
    suv_bw_scale_factor,
    suv_scale_factor,
    to_suv,
)

_SEQUENCE_KEYS = (
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadiopharmaceuticalStartTime",
    "RadiopharmaceuticalStartDateTime",
)


def dataset_from_extract(item: dict[str, Any]) -> Dataset:
    """A real pydicom Dataset built from one calculate-suv header extract (flat JSON → DICOM structure)."""
    ds = Dataset()
    pharma = Dataset()
    for key, value in item.items():
        if key == "PhilipsPETPrivateGroup":
            if value:
                block = ds.private_block(0x7053, PHILIPS_PET_CREATOR, create=True)
                if "SUVScaleFactor" in value:
                    block.add_new(0x00, "DS", str(value["SUVScaleFactor"]).strip())
                if "ActivityConcentrationScaleFactor" in value:
                    block.add_new(0x09, "DS", str(value["ActivityConcentrationScaleFactor"]).strip())
        elif key in _SEQUENCE_KEYS:
            setattr(pharma, key, str(value).strip() if isinstance(value, str) else value)
        else:
            setattr(ds, key, value.strip() if isinstance(value, str) else value)
    ds.RadiopharmaceuticalInformationSequence = Sequence([pharma])
    ds.SeriesInstanceUID = "1.2.3"
    return ds


def _fixture_cases(data_dir: Path) -> tuple[Path, dict[str, float]]:
    folder = data_dir / "pet-suv-headers"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    expected = json.loads((folder / "expected_suvbw_factors.json").read_text())
    expected.pop("_note")
    return folder, expected


def test_suvbw_factors_of_every_vendor_fixture(data_dir: Path) -> None:
    folder, expected = _fixture_cases(data_dir)
    assert len(expected) == 8
    for name, factor in expected.items():
        items = json.loads((folder / f"{name}-instances.json").read_text())
        info = pet_info([dataset_from_extract(i) for i in items], source=name)
        got = suv_bw_scale_factor(info)
        assert got == pytest.approx(factor, rel=1e-6), name


def test_fixture_paths_are_the_ones_claimed(data_dir: Path) -> None:
    """Each fixture exercises the branch it is named after (so the test above covers them all)."""
    folder, _ = _fixture_cases(data_dir)

    def info(name: str):
        items = json.loads((folder / f"{name}-instances.json").read_text())
        return pet_info([dataset_from_extract(i) for i in items], source=name)

    late_series = info("BQML_AC_DT_lessThan_S_DT_SIEMENS")
    assert late_series.series_datetime > min(late_series.acquisition_datetimes)
    # decay measured from the earliest acquisition, not the (later) series time: 12:35:14.999995 − 11:41:00
    assert decay_time_s(late_series) == pytest.approx(3254.999995, abs=1e-6)
    assert info("RADIOPHARM_DATETIME_UNDEFINED").radiopharmaceutical.start_datetime is None
    cnts = info("PHILIPS_CNTS_AND_SUV")
    assert cnts.units == "CNTS" and cnts.philips_suv_scale_factor == pytest.approx(0.000728)
    assert info("PHILIPS_BQML").philips_suv_scale_factor is not None  # present but must not be used for BQML


def test_siemens_factor_by_hand(data_dir: Path) -> None:
    # SOURCE.md: 67000 g / (374e6 Bq × 2^(−8264 s / 6586.2 s)) with 8264 s = 10:48:29 − 08:30:45
    folder, _ = _fixture_cases(data_dir)
    items = json.loads((folder / "SIEMENS-instances.json").read_text())
    info = pet_info([dataset_from_extract(i) for i in items], source="SIEMENS")
    assert decay_time_s(info) == 8264.0
    assert suv_bw_scale_factor(info) == pytest.approx(67000 / (374e6 * 2 ** (-8264 / 6586.2)), rel=1e-12)


def test_janmahasatian_by_hand() -> None:
    # woman, 68 kg, 1.65 m: BMI = 24.977; LBM = 9270·68 / (8780 + 244·24.977) = 42.379 kg
    assert lean_body_mass_kg(68.0, 1.65, "F") == pytest.approx(42.3789, abs=1e-3)
    # man, 80 kg, 1.80 m: BMI = 24.691; LBM = 9270·80 / (6680 + 216·24.691) = 61.731 kg
    assert lean_body_mass_kg(80.0, 1.80, "M") == pytest.approx(61.731, abs=1e-3)
    with pytest.raises(InputError, match="PatientSex"):
        lean_body_mass_kg(80.0, 1.8, "O")
    with pytest.raises(InputError, match="PatientSize"):
        lean_body_mass_kg(80.0, 0.0, "M")


def _manual(**overrides: Any):
    kwargs: dict[str, Any] = {
        "weight_kg": 80.0,
        "injected_dose_bq": 300e6,
        "injection_time": datetime(2024, 5, 1, 9, 0, 0),
        "scan_time": datetime(2024, 5, 1, 10, 0, 0),
        "height_m": 1.80,
        "sex": "M",
    }
    kwargs.update(overrides)
    return pet_info_from_values(**kwargs)


def test_sul_factor_by_hand() -> None:
    info = _manual()
    decayed = 300e6 * 2 ** (-3600 / 6586.2)
    assert suv_scale_factor(info, "bw") == pytest.approx(80000 / decayed, rel=1e-12)
    assert suv_scale_factor(info, "lbm") == pytest.approx(61731.0 / decayed, rel=1e-4)


def test_to_suv_converts_and_recognises_suv_input() -> None:
    info = _manual()
    bq = Image(np.full((2, 3, 3), 10000.0, np.float32), (1.0, 1.0, 1.0), modality="PT", units="BQML")
    suvbw = to_suv(bq, info, "bw")
    assert suvbw.units == "SUVbw"
    np.testing.assert_allclose(suvbw.array, 10000.0 * suv_scale_factor(info, "bw"), rtol=1e-6)
    # already SUV: not re-scaled, only converted between SUVbw and SUL
    assert to_suv(suvbw, info, "bw") is suvbw
    sul = to_suv(suvbw, info, "lbm")
    np.testing.assert_allclose(sul.array, suvbw.array * lean_body_mass_kg(80, 1.8, "M") / 80, rtol=1e-6)
    gml = bq.with_array(suvbw.array, units="GML")
    np.testing.assert_allclose(to_suv(gml, info, "bw").array, suvbw.array)
    np.testing.assert_allclose(to_suv(sul, info, "bw").array, suvbw.array, rtol=1e-6)


def test_injection_before_midnight_without_date() -> None:
    ds = _pet_dataset(start_time="233000", series_time="003000", series_date="20240502")
    info = pet_info([ds], "midnight")
    assert decay_time_s(info) == 3600.0


def test_admin_decay_correction_uses_the_full_dose() -> None:
    ds = _pet_dataset()
    ds.DecayCorrection = "ADMIN"
    assert suv_bw_scale_factor(pet_info([ds], "admin")) == pytest.approx(70000 / 200e6)


def _pet_dataset(start_time: str = "090000", series_time: str = "100000", series_date: str = "20240501") -> Dataset:
    ds = Dataset()
    ds.SeriesInstanceUID = "1.2.3"
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.PatientWeight = "70"
    ds.SeriesDate = ds.AcquisitionDate = series_date
    ds.SeriesTime = ds.AcquisitionTime = series_time
    item = Dataset()
    item.RadionuclideTotalDose = "200000000"
    item.RadionuclideHalfLife = "6586.2"
    item.RadiopharmaceuticalStartTime = start_time
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    return ds


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda ds: delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadionuclideTotalDose"),
            r"RadionuclideTotalDose \(0018,1074\)",
        ),
        (lambda ds: delattr(ds, "PatientWeight"), r"PatientWeight \(0010,1030\)"),
        (
            lambda ds: delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadionuclideHalfLife"),
            r"RadionuclideHalfLife \(0018,1075\)",
        ),
        (
            lambda ds: delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadiopharmaceuticalStartTime"),
            r"RadiopharmaceuticalStartTime \(0018,1072\)",
        ),
        (lambda ds: setattr(ds, "CorrectedImage", ["ATTN"]), r"CorrectedImage \(0028,0051\) lacks DECY"),
        (lambda ds: setattr(ds, "DecayCorrection", "NONE"), r"DecayCorrection \(0054,1102\)"),
        (lambda ds: setattr(ds, "Units", "CNTS"), r"7053,1000"),
        (lambda ds: setattr(ds, "Units", "PROPCPS"), r"Units \(0054,1001\)"),
        (
            lambda ds: setattr(ds.RadiopharmaceuticalInformationSequence[0], "RadiopharmaceuticalStartTime", "110000"),
            None,
        ),
    ],
)
def test_missing_or_inconsistent_tags_are_named(mutate: Any, message: str | None) -> None:
    ds = _pet_dataset()
    mutate(ds)
    info = pet_info([ds], "bad.dcm")
    if message is None:  # injection at 11:00 on the scan day after a 10:00 scan → previous day, 23 h decay
        assert decay_time_s(info) == 23 * 3600
        return
    with pytest.raises(InputError, match=message) as err:
        suv_bw_scale_factor(info)
    assert "bad.dcm" in str(err.value)


def test_weight_differing_between_instances_is_refused() -> None:
    a, b = _pet_dataset(), _pet_dataset()
    b.PatientWeight = "71"
    with pytest.raises(InputError, match="PatientWeight differs"):
        pet_info([a, b], "series")


def test_gml_is_not_rescaled() -> None:
    ds = _pet_dataset()
    ds.Units = "GML"
    del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
    assert suv_bw_scale_factor(pet_info([ds], "gml")) == 1.0
