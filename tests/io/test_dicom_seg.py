"""DICOM SEG of a specimen's masks: read back with highdicom, every frame lands on its source CT slice, voxel for
voxel, whatever order the slices lie in on disk."""

from __future__ import annotations

import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from breastseg.errors import InputError
from breastseg.io.dicom import read_dicom_series
from breastseg.io.dicom_seg import write_dicom_seg
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom, write_specimen_dicom
from tests.servers import dciodvfy


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("seg")
    ph = make_specimen_phantom(
        SpecimenPhantomConfig(seed=4, ct_spacing_mm=0.4, pet_spacing_mm=0.8, tumour_diameter_mm=8)
    )
    folders = write_specimen_dicom(ph, root)
    return folders["ct"], ph


def test_every_frame_lands_on_its_source_slice(series: tuple[Path, object], tmp_path: Path) -> None:
    ct_dir, ph = series
    ct = read_dicom_series(ct_dir)
    tumour = np.asarray(ph.images["tumour"].array) > 0  # type: ignore[attr-defined]
    specimen = np.asarray(ph.images["specimen"].array) > 0  # type: ignore[attr-defined]
    assert tumour.shape == ct.image.shape and tumour.any()
    seg_path = write_dicom_seg({"tumour": tumour, "specimen": specimen}, ct, tmp_path / "seg.dcm")
    seg = hd.seg.segread(seg_path)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["tumour", "specimen"]
    uids = [str(h.SOPInstanceUID) for h in ct.headers]  # in the reader's sorted slice order
    back = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2])
    np.testing.assert_array_equal(back[..., 0] > 0, tumour)
    np.testing.assert_array_equal(back[..., 1] > 0, specimen)
    assert seg.FrameOfReferenceUID == ct.headers[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == ct.headers[0].StudyInstanceUID


def test_slices_stored_in_reverse_order_still_match(series: tuple[Path, object], tmp_path: Path) -> None:
    ct_dir, ph = series
    reordered = tmp_path / "ct"
    reordered.mkdir()
    files = sorted(ct_dir.glob("*.dcm"))
    for i, f in enumerate(reversed(files)):  # file names now run against the slice positions
        pydicom.dcmread(f).save_as(reordered / f"X{i:05d}.dcm")
    ct = read_dicom_series(reordered)
    tumour = np.asarray(ph.images["tumour"].array) > 0  # type: ignore[attr-defined]
    seg = hd.seg.segread(write_dicom_seg({"tumour": tumour}, ct, tmp_path / "seg.dcm"))
    uids = [str(h.SOPInstanceUID) for h in ct.headers]
    back = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])
    np.testing.assert_array_equal(back[..., 0] > 0, tumour)
    with pytest.raises(InputError, match="shape"):
        write_dicom_seg({"tumour": tumour[1:]}, ct, tmp_path / "bad.dcm")
    with pytest.raises(InputError, match="unknown segment"):
        write_dicom_seg({"liver": tumour}, ct, tmp_path / "bad.dcm")
    assert not (tmp_path / "bad.dcm").exists()


def test_dciodvfy_finds_no_error_in_the_seg(series: tuple[Path, object], tmp_path: Path) -> None:
    ct_dir, ph = series
    ct = read_dicom_series(ct_dir)
    tumour = np.asarray(ph.images["tumour"].array) > 0  # type: ignore[attr-defined]
    path = write_dicom_seg({"tumour": tumour}, ct, tmp_path / "seg.dcm")
    out = subprocess.run([dciodvfy(), str(path)], capture_output=True, text=True, timeout=120)
    report = out.stdout + out.stderr
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert not errors, report
    assert "Segmentation" in report  # it did recognise the IOD


def test_the_phantoms_ct_and_pet_are_valid_dicom_too(series: tuple[Path, object]) -> None:
    ct_dir, _ = series
    for folder in (ct_dir, ct_dir.parent / "pet"):
        out = subprocess.run([dciodvfy(), str(sorted(folder.glob("*.dcm"))[0])], capture_output=True, text=True)
        report = out.stdout + out.stderr
        assert not [line for line in report.splitlines() if line.startswith("Error")], report


def test_segments_carry_the_report_figures_colours(series: tuple[Path, object], tmp_path: Path) -> None:
    from skimage.color import lab2rgb

    from breastseg.report.figures import SPECIMEN_COLOUR, TUMOUR_COLOUR

    ct_dir, ph = series
    ct = read_dicom_series(ct_dir)
    tumour = np.asarray(ph.images["tumour"].array) > 0  # type: ignore[attr-defined]
    specimen = np.asarray(ph.images["specimen"].array) > 0  # type: ignore[attr-defined]
    seg = pydicom.dcmread(write_dicom_seg({"tumour": tumour, "specimen": specimen}, ct, tmp_path / "seg.dcm"))
    for item, hex_colour in zip(seg.SegmentSequence, (TUMOUR_COLOUR, SPECIMEN_COLOUR), strict=True):
        # PS3.3 C.10.7.1.1: CIELab scaled to 0…65535 (L* over 0…100, a* and b* over −128…127); skimage's inverse
        lab_l, lab_a, lab_b = (int(v) for v in item.RecommendedDisplayCIELabValue)
        lab = [lab_l * 100.0 / 65535.0, lab_a * 255.0 / 65535.0 - 128.0, lab_b * 255.0 / 65535.0 - 128.0]
        rgb = lab2rgb(np.array([[lab]]))[0, 0] * 255.0
        expected = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
        np.testing.assert_allclose(rgb, expected, atol=3.0)
