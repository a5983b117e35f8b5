"""Property-based fuzzing of the readers (Hypothesis): whatever bytes or tags a damaged file holds, a reader either
raises breastseg's named error or returns what the undamaged file holds — never a traceback, never a silently
different image."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from breastseg.errors import InputError
from breastseg.io import read_dicom_series, read_image
from breastseg.io.raster import read_pixels
from breastseg.suv import pet_info_from_mapping, suv_scale_factor
from tests.io.dicom_helpers import hand_written_series

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible from the log
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VALUES = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) * 3.5 - 100.0


@pytest.fixture(scope="module")
def nifti(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A small float NIfTI, uncompressed and gzipped."""
    folder = tmp_path_factory.mktemp("nifti")
    img = sitk.GetImageFromArray(VALUES)
    img.SetSpacing((0.7, 0.8, 1.5))
    sitk.WriteImage(img, str(folder / "a.nii"), useCompression=False)
    raw = (folder / "a.nii").read_bytes()
    return raw, gzip.compress(raw)


def _read(path: Path) -> np.ndarray | None:
    """The image's voxels, or ``None`` for a named error; any other exception fails the test."""
    try:
        return np.asarray(read_image(path).array)
    except InputError as exc:
        assert str(path) in str(exc), f"the message does not name the file: {exc}"
        return None


@FUZZ
@given(cut=st.floats(0.0, 0.999), gz=st.booleans())
def test_a_cut_nifti_is_always_refused(nifti: tuple[bytes, bytes], tmp_path: Path, cut: float, gz: bool) -> None:
    data = nifti[1] if gz else nifti[0]
    path = tmp_path / ("cut.nii.gz" if gz else "cut.nii")
    path.write_bytes(data[: int(len(data) * cut)])
    assert _read(path) is None


@FUZZ
@given(position=st.integers(352, 352 + VALUES.nbytes - 1), value=st.integers(0, 255))
def test_a_changed_voxel_byte_changes_that_voxel_only_or_is_refused(
    nifti: tuple[bytes, bytes], tmp_path: Path, position: int, value: int
) -> None:
    data = bytearray(nifti[0])
    data[position] = value
    path = tmp_path / "flip.nii"
    path.write_bytes(bytes(data))
    read = _read(path)
    if read is None:  # the flip made a NaN or infinity
        voxel = np.frombuffer(bytes(data), "<f4", count=VALUES.size, offset=352)[(position - 352) // 4]
        assert not np.isfinite(voxel)
        return
    differ = np.argwhere(read != VALUES)
    assert len(differ) <= 1
    if len(differ):
        assert np.ravel_multi_index(tuple(differ[0]), VALUES.shape) == (position - 352) // 4


@FUZZ
@given(position=st.integers(0, 347), value=st.integers(0, 255))
def test_a_damaged_nifti_header_never_gives_a_traceback(
    nifti: tuple[bytes, bytes], tmp_path: Path, position: int, value: int
) -> None:
    data = bytearray(nifti[0])
    data[position] = value
    path = tmp_path / "header.nii"
    path.write_bytes(bytes(data))
    _read(path)


_CRITICAL = ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "RescaleSlope", "Rows", "PixelData")
_HARMLESS = ("InstanceNumber", "SliceThickness", "SeriesDescription", "AcquisitionTime")


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("series") / "ct"
    hand_written_series(folder, VALUES, (1.5, 0.8, 0.7), (10.0, -20.0, 30.0), np.eye(3), intercept=-1024.0)
    return folder


@FUZZ
@given(slice_index=st.integers(0, 3), tag=st.sampled_from(_CRITICAL + _HARMLESS))
def test_a_dicom_series_missing_a_tag_is_refused_or_read_as_it_is(
    series: Path, tmp_path: Path, slice_index: int, tag: str
) -> None:
    import tempfile

    reference = read_dicom_series(series).image
    target = Path(tempfile.mkdtemp(dir=tmp_path, prefix=f"s-{slice_index}-{tag}-"))
    for k, f in enumerate(sorted(series.glob("*.dcm"))):
        ds = pydicom.dcmread(f)
        if k == slice_index and tag in ds:
            delattr(ds, tag)
        ds.save_as(target / f.name)
    try:
        image = read_dicom_series(target).image
    except InputError as exc:
        assert str(target) in str(exc) or tag in str(exc), str(exc)
        assert tag in _CRITICAL
        return
    assert tag in _HARMLESS, f"{tag} removed from slice {slice_index} and still read"
    assert np.array_equal(image.array, reference.array) and image.grid.same_as(reference.grid)


@FUZZ
@given(
    mode=st.sampled_from(["L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "1"]),
    seed=st.integers(0, 2**16),
)
def test_an_image_of_any_mode_reads_as_grey_or_colour_in_0_to_255(tmp_path: Path, mode: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, (12, 17), dtype=np.uint8)
    base = PILImage.fromarray(grey)
    if mode in ("I;16", "I", "F"):
        scale = {"I;16": 257, "I": 257, "F": 1}[mode]
        kind = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        image = PILImage.fromarray((grey.astype(np.float64) * scale).astype(kind))
        suffix = ".tif"
    else:
        image = base.convert(mode)
        suffix = ".tif" if mode in ("CMYK", "LA") else ".png"
    path = tmp_path / f"img{suffix}"
    image.save(path)
    try:
        pixels = read_pixels(path)
    except InputError:
        pytest.fail(f"mode {mode} refused")
    assert pixels.shape[:2] == grey.shape and np.isfinite(pixels).all()
    assert float(np.min(pixels)) >= 0 and float(np.max(pixels)) <= 255
    if mode in ("L", "I;16", "I", "F"):
        assert np.array_equal(np.asarray(pixels, np.float64), grey.astype(np.float64))


_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 68.0, 68000.0, 0.068, 1.65, 165.0, 2.0e8, 200.0]),
)


@FUZZ
@given(weight=_NUMBERS, height=_NUMBERS, dose=_NUMBERS, half_life=_NUMBERS)
def test_pet_info_values_give_a_named_error_or_a_finite_factor(
    weight: float, height: float, dose: float, half_life: float
) -> None:
    doc = {
        "units": "BQML",
        "patient_weight_kg": weight,
        "patient_height_m": height,
        "patient_sex": "F",
        "injected_dose_bq": dose,
        "half_life_s": half_life,
        "injection_datetime": "2025-03-14T09:55:00",
        "scan_datetime": "2025-03-14T11:30:00",
    }
    try:
        info = pet_info_from_mapping(doc, "info.json")
        factors = [suv_scale_factor(info, "bw"), suv_scale_factor(info, "lbm")]
    except InputError:
        return
    assert all(np.isfinite(f) and f > 0 for f in factors)
    assert 0.5 <= weight <= 650 and 1e5 <= dose <= 5e10
