"""Reading DICOM series: geometry and values against SimpleITK/GDCM on series written by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import (
    list_dicom_series,
    read_dicom_phases,
    read_dicom_series,
    read_image,
    write_dicom_series,
)
from tests.conftest import oblique_direction
from tests.io.dicom_helpers import dynamic_phase_tweak, hand_written_series


def _gdcm_read(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_hand_written_oblique_series_matches_gdcm(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(-1000, 1500, size=(9, 12, 14)).astype(np.float64)
    hand_written_series(
        tmp_path / "ct",
        values,
        (1.25, 0.6, 0.7),
        (10.0, -20.0, 35.5),
        oblique_direction(),
        file_order=[4, 0, 8, 2, 6, 1, 3, 7, 5],
    )
    ours = read_dicom_series(tmp_path / "ct").image
    ref = _gdcm_read(tmp_path / "ct")
    np.testing.assert_allclose(ours.array, sitk.GetArrayFromImage(ref))
    np.testing.assert_allclose(ours.array, values)
    np.testing.assert_allclose(ours.spacing[::-1], ref.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(ours.origin, ref.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(ours.direction.ravel(), ref.GetDirection(), atol=1e-6)
    assert ours.modality == "CT" and ours.units == "HU"


def test_per_slice_rescale_slope_is_applied(tmp_path: Path) -> None:
    values = np.linspace(0, 1.5e4, 4 * 6 * 5).reshape(4, 6, 5)
    slopes = [2.0, 4.0, 0.5, 3.0]
    # quantise the truth the way the stored integers will
    expected = np.stack([np.round(values[k] / s) * s for k, s in enumerate(slopes)])
    hand_written_series(tmp_path, expected, (2.0, 1.0, 1.0), (0, 0, 0), np.eye(3), slopes=slopes, intercept=0.0)
    np.testing.assert_allclose(read_image(tmp_path).array, expected)


def test_series_selection_by_uid_and_clear_error_when_ambiguous(tmp_path: Path) -> None:
    a = hand_written_series(tmp_path / "a", np.zeros((3, 4, 4)), (1, 1, 1), (0, 0, 0), np.eye(3))
    b = hand_written_series(tmp_path / "b", np.ones((5, 4, 4)), (1, 1, 1), (0, 0, 0), np.eye(3))
    assert [s.series_uid for s in list_dicom_series(tmp_path)] == [b, a]
    with pytest.raises(InputError, match="holds 2 series"):
        read_image(tmp_path)
    assert read_image(tmp_path, series_uid=a).shape == (3, 4, 4)
    # a single file selects its own series
    one_file = sorted((tmp_path / "b").iterdir())[0]
    assert read_image(one_file).shape == (5, 4, 4)


def test_writer_round_trip_through_gdcm(tmp_path: Path, oblique_image: Image) -> None:
    files = write_dicom_series(oblique_image, tmp_path / "s", modality="CT")
    assert len(files) == oblique_image.shape[0]
    back = read_image(tmp_path / "s")
    np.testing.assert_allclose(back.array, np.round(oblique_image.array), atol=0.5)
    ref = _gdcm_read(tmp_path / "s")
    np.testing.assert_allclose(back.origin, ref.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(back.origin, oblique_image.origin, atol=1e-5)
    np.testing.assert_allclose(back.direction, oblique_image.direction, atol=1e-7)
    np.testing.assert_allclose(back.spacing, oblique_image.spacing, atol=1e-6)


def test_writer_keeps_float_pet_values_to_quantisation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pet = Image(
        rng.gamma(2.0, 3000.0, size=(4, 8, 8)).astype(np.float32),
        (2.0, 2.0, 2.0),
        modality="PT",
        units="BQML",
    )
    write_dicom_series(pet, tmp_path / "pet")
    back = read_image(tmp_path / "pet")
    peak = np.abs(pet.array).max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(back.array - pet.array) <= peak / 32767.0)
    assert back.units == "BQML"


def test_left_handed_image_is_written_flipped_and_read_back_consistently(tmp_path: Path) -> None:
    d = np.diag([1.0, 1.0, -1.0])
    img = Image(np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5), (2.0, 1.0, 1.0), (0.0, 0.0, 10.0), d, "CT")
    write_dicom_series(img, tmp_path / "lh")
    back = read_image(tmp_path / "lh")
    # the same physical points carry the same values
    for idx in [(0, 0, 0), (2, 3, 4), (1, 2, 0)]:
        world = img.grid.index_to_world(idx)
        back_idx = np.round(back.grid.world_to_index(world)).astype(int)
        assert back.array[tuple(back_idx)] == img.array[idx]


def test_empty_folder_and_non_dicom_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM image series"):
        read_image(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("not dicom")
    with pytest.raises(InputError, match="no DICOM image series"):
        read_image(tmp_path / "junk")


def test_duplicate_positions_and_nonuniform_spacing_are_refused(tmp_path: Path) -> None:
    def same_position(k: int, ds: pydicom.Dataset) -> None:
        ds.ImagePositionPatient = ["0", "0", "0"]

    hand_written_series(tmp_path / "dup", np.zeros((3, 4, 4)), (1, 1, 1), (0, 0, 0), np.eye(3), tweak=same_position)
    with pytest.raises(InputError, match="share one position"):
        read_image(tmp_path / "dup")

    def gap(k: int, ds: pydicom.Dataset) -> None:
        if k == 3:
            ds.ImagePositionPatient = ["0", "0", "4.5"]

    hand_written_series(tmp_path / "gap", np.zeros((4, 4, 4)), (1, 1, 1), (0, 0, 0), np.eye(3), tweak=gap)
    with pytest.raises(InputError, match="not uniform"):
        read_image(tmp_path / "gap")


def test_missing_geometry_tag_is_named(tmp_path: Path) -> None:
    def drop(k: int, ds: pydicom.Dataset) -> None:
        del ds.PixelSpacing

    hand_written_series(tmp_path, np.zeros((2, 4, 4)), (1, 1, 1), (0, 0, 0), np.eye(3), tweak=drop)
    with pytest.raises(InputError, match=r"PixelSpacing \(0028,0030\)"):
        read_image(tmp_path)


def test_truncated_pixel_data_is_named(tmp_path: Path) -> None:
    def cut(k: int, ds: pydicom.Dataset) -> None:
        if k == 1:
            ds.PixelData = ds.PixelData[:10]

    hand_written_series(tmp_path, np.zeros((3, 4, 4)), (1, 1, 1), (0, 0, 0), np.eye(3), tweak=cut)
    with pytest.raises(InputError, match=r"\.dcm: pixel data truncated \(10 bytes; 4 x 4 x 16 bits need 32\)"):
        read_image(tmp_path)


def test_dynamic_series_splits_into_timed_phases(tmp_path: Path) -> None:
    values = np.zeros((3, 4, 4))
    times = {1: "101500", 2: "101630", 3: "101800"}
    uid = "1.2.3.4.5"
    for p in (3, 1, 2):
        hand_written_series(
            tmp_path / f"p{p}",
            values + p,
            (2, 1, 1),
            (0, 0, 0),
            np.eye(3),
            series_uid=uid,
            tweak=dynamic_phase_tweak(p, times[p]),
        )
    with pytest.raises(InputError, match="read_dicom_phases"):
        read_image(tmp_path)
    phases = read_dicom_phases(tmp_path)
    assert [p.key for p, _ in phases] == [1.0, 2.0, 3.0]
    assert [p.seconds_from_first for p, _ in phases] == [0.0, 90.0, 180.0]
    assert [float(s.image.array.mean()) for _, s in phases] == [1.0, 2.0, 3.0]


def test_compressed_series_is_decoded(tmp_path: Path) -> None:
    """RLE Lossless goes through pydicom's decoders (the uncompressed fast path must not catch it)."""
    from pydicom.uid import RLELossless

    values = np.random.default_rng(5).integers(-1000, 2000, size=(3, 8, 9)).astype(np.float64)

    def compress(k: int, ds: pydicom.Dataset) -> None:
        ds.compress(RLELossless)

    hand_written_series(tmp_path, values, (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3), tweak=compress)
    assert pydicom.dcmread(sorted(tmp_path.iterdir())[0]).file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_allclose(read_image(tmp_path).array, values)
