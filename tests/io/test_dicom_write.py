"""Writing DICOM as scanners send it: a dynamic (DCE) MR series whose phases share one series, and a calibrated
2D ultrasound image — read back by the readers the workflows use, against the values written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.dicom_write import StudyIdentity, write_dynamic_series, write_ultrasound_image
from breastseg.workflows.mri.exam import read_dce_dicom
from breastseg.workflows.ultrasound.predict import read_ultrasound_image


def test_a_dynamic_series_reads_back_as_timed_phases(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    phases = [Image(rng.uniform(100, 900, (4, 6, 5)).astype(np.float32), (3.0, 1.5, 1.5), modality="MR")
              for _ in range(3)]  # fmt: skip
    files = write_dynamic_series(phases, [0.0, 75.0, 165.5], tmp_path / "dce", study=StudyIdentity(patient_id="P"))
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert len({str(h.SeriesInstanceUID) for h in headers}) == 1  # one series, as a scanner sends it
    assert sorted(int(h.InstanceNumber) for h in headers) == list(range(1, 13))  # numbered on across phases
    exam = read_dce_dicom(tmp_path / "dce")
    assert exam.post_times_s == pytest.approx([75.0, 165.5])  # seconds after the pre-contrast phase
    for read, written in zip([exam.t1, *exam.post], phases, strict=True):
        assert np.allclose(read.array, written.array, atol=900 / 32767)  # int16 with a per-slice slope
    assert exam.first_post_dicom is not None
    assert {int(h.TemporalPositionIdentifier) for h in exam.first_post_dicom.headers} == {2}
    with pytest.raises(InputError, match="2 phases but 1"):
        write_dynamic_series(phases[:2], [0.0], tmp_path / "bad")


def test_an_ultrasound_image_keeps_its_pixels_and_pixel_size(tmp_path: Path) -> None:
    pixels = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40).astype(np.uint8)
    path = write_ultrasound_image(pixels, tmp_path / "noext", (0.08, 0.12))  # no .dcm: known by its preamble
    image = read_ultrasound_image(path)
    assert np.array_equal(image.pixels, pixels.astype(np.float32))
    assert image.spacing_mm == pytest.approx((0.08, 0.12))
    assert image.dicom is not None and "PixelData" not in image.dicom and str(image.dicom.Modality) == "US"
    with pytest.raises(InputError, match="2D uint8"):
        write_ultrasound_image(pixels.astype(np.float32), tmp_path / "f.dcm", None)
