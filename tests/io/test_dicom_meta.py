"""DICOM date/time values and typed metadata."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from pydicom.dataset import Dataset

from breastseg.io.dicom_meta import parse_da, parse_dt, parse_tm, patient_info


def test_dicom_date_time_values() -> None:
    assert parse_da("20201217") == date(2020, 12, 17)
    assert parse_da("2020.12.17") == date(2020, 12, 17)
    assert parse_tm("104829.000000") == time(10, 48, 29)
    assert parse_tm("104830.351370") == time(10, 48, 30, 351370)
    assert parse_tm("0830") == time(8, 30)
    assert parse_tm("08:30:45") == time(8, 30, 45)
    assert parse_tm("084500.00") == time(8, 45)
    assert parse_dt("20201217083045.000000 ") == datetime(2020, 12, 17, 8, 30, 45)
    assert parse_dt("20201217083045+0100") == datetime(2020, 12, 17, 8, 30, 45)
    assert parse_tm("") is None and parse_da(None) is None
    with pytest.raises(ValueError, match="not a DICOM time"):
        parse_tm("25h")


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_patient_info_units() -> None:
    ds = Dataset()
    ds.PatientWeight = "64"
    ds.PatientSize = "175"  # centimetres written into a metres field
    ds.PatientSex = "f"
    info = patient_info(ds)
    assert (info.weight_kg, info.height_m, info.sex) == (64.0, 1.75, "F")
