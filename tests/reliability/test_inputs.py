"""Bad inputs to ``specimen assess``: each gives a named one-line error (exit 2) or "not assessable", never a margin.

Every case starts from a copy of one valid phantom (NIfTI and DICOM) and breaks one thing, as a hostile but
realistic user or a faulty scanner export would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from breastseg.cli.main import main
from tests.reliability.conftest import assess_argv


def _dicom_argv(case: Path, out: Path) -> list[str]:
    ct, pet = case / "dicom" / "ct", case / "dicom" / "pet"
    return ["specimen", "assess", "--ct", str(ct), "--pet", str(pet), "--out", str(out)]


def _refused(argv: list[str], capsys: pytest.CaptureFixture, *fragments: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("breastseg: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    out = Path(argv[argv.index("--out") + 1])
    assert not (out / "result.json").exists()
    return err


def _edit_series(folder: Path, edit: Callable[[int, pydicom.Dataset], None]) -> None:
    for k, f in enumerate(sorted(folder.glob("*.dcm"))):
        ds = pydicom.dcmread(f)
        edit(k, ds)
        ds.save_as(f)


def _edit_pet_nifti(case: Path, change: Callable[[np.ndarray], np.ndarray]) -> None:
    img = sitk.ReadImage(str(case / "pet.nii.gz"))
    out = sitk.GetImageFromArray(change(sitk.GetArrayFromImage(img).astype(np.float32)))
    out.CopyInformation(img)
    sitk.WriteImage(out, str(case / "pet.nii.gz"))


def _edit_truth(case: Path, **pet: object) -> None:
    doc = json.loads((case / "truth.json").read_text())
    doc["pet"].update(pet)
    (case / "truth.json").write_text(json.dumps(doc))


def test_a_pet_of_another_patient_study_and_frame_is_refused(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def other(_k: int, ds: pydicom.Dataset) -> None:
        ds.PatientID = "SOMEONE-ELSE"
        ds.StudyInstanceUID = "1.2.3.4"
        ds.FrameOfReferenceUID = "1.2.3.5"

    _edit_series(case_copy / "dicom" / "pet", other)
    err = _refused(_dicom_argv(case_copy, tmp_path / "a"), capsys, "not one PET/CT acquisition", "SOMEONE-ELSE")
    assert "StudyInstanceUID" in err and "FrameOfReferenceUID" in err and "--allow-pair-mismatch" in err
    assert main([*_dicom_argv(case_copy, tmp_path / "b"), "--allow-pair-mismatch"]) == 0


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (np.zeros_like, "every voxel is 0"),
        (lambda a: np.full_like(a, np.nan), "every voxel NaN"),
        (lambda a: np.where(a > np.percentile(a, 99), np.nan, a), "NaN or infinite"),
    ],
    ids=["all-zero", "all-NaN", "NaN-in-the-hottest-voxels"],
)
def test_a_pet_without_usable_values_is_refused(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture, change: Callable, fragment: str
) -> None:
    _edit_pet_nifti(case_copy, change)
    _refused(assess_argv(case_copy, tmp_path / "a"), capsys, str(case_copy / "pet.nii.gz"), fragment)


def test_a_pet_without_uptake_in_the_specimen_is_not_assessable(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def hot_corner_only(a: np.ndarray) -> np.ndarray:
        b = np.zeros_like(a)
        b[0, 0, 0] = 1000.0  # one hot voxel in a corner of the field of view, far from the tissue
        return b

    _edit_pet_nifti(case_copy, hot_corner_only)
    _refused(assess_argv(case_copy, tmp_path / "a"), capsys, "not assessable", "no signal in the specimen tissue")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("injected_dose_bq", float("nan"), "RadionuclideTotalDose (0018,1074) in"),
        ("patient_weight_kg", 68000.0, "PatientWeight (0010,1030) 68000 kg is implausible"),
        ("patient_height_m", 165.0, "PatientSize (0010,1020) 165 m is implausible"),
    ],
)
def test_implausible_patient_and_dose_are_refused(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture, field: str, value: float, fragment: str
) -> None:
    _edit_truth(case_copy, **{field: value})
    _refused(assess_argv(case_copy, tmp_path / "a"), capsys, str(case_copy / "truth.json"), fragment)


def test_a_truncated_nifti_is_refused(case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = (case_copy / "ct.nii.gz").read_bytes()
    (case_copy / "ct.nii.gz").write_bytes(data[: len(data) * 2 // 3])
    _refused(assess_argv(case_copy, tmp_path / "a"), capsys, str(case_copy / "ct.nii.gz"), "cut short")


def test_a_thousandfold_spacing_is_refused(case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = sitk.ReadImage(str(case_copy / "ct.nii.gz"))
    img.SetSpacing([s * 1000 for s in img.GetSpacing()])
    sitk.WriteImage(img, str(case_copy / "ct.nii.gz"))
    _refused(assess_argv(case_copy, tmp_path / "a"), capsys, "voxel size", "is implausible")


def test_a_dicom_pet_without_rescale_slope_is_refused(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _edit_series(case_copy / "dicom" / "pet", lambda _k, ds: delattr(ds, "RescaleSlope"))
    _refused(_dicom_argv(case_copy, tmp_path / "a"), capsys, "RescaleSlope (0028,1053) missing", "PT slice")


def test_a_gantry_tilted_ct_is_refused_not_misplaced(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def tilt(_k: int, ds: pydicom.Dataset) -> None:
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0.966, 0.259]  # 15° about x; positions still step along z

    _edit_series(case_copy / "dicom" / "ct", tilt)
    _refused(_dicom_argv(case_copy, tmp_path / "a"), capsys, "not stacked along their normal", "15.0°")


def test_one_slice_with_another_pixel_spacing_is_refused(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def one_off(k: int, ds: pydicom.Dataset) -> None:
        if k == 7:
            ds.PixelSpacing = [0.5, 0.5]

    _edit_series(case_copy / "dicom" / "ct", one_off)
    _refused(_dicom_argv(case_copy, tmp_path / "a"), capsys, "different PixelSpacing")


def test_a_truncated_dicom_file_is_refused_not_dropped(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    last = sorted((case_copy / "dicom" / "ct").iterdir())[-1]
    last.write_bytes(last.read_bytes()[:400])  # the header itself is cut: the slice would silently vanish
    _refused(_dicom_argv(case_copy, tmp_path / "a"), capsys, str(last), "cut short or corrupt")


def test_a_note_beside_the_dicom_files_is_ignored(case_copy: Path, tmp_path: Path) -> None:
    (case_copy / "dicom" / "ct" / "README.txt").write_text("scanned by the night shift")
    assert main(_dicom_argv(case_copy, tmp_path / "a")) == 0


def _crop_nifti(path: Path, box: tuple[slice, slice, slice]) -> None:
    """Keep only ``box`` (array order z, y, x) of a NIfTI file, with the geometry that keeps it in place."""
    img = sitk.ReadImage(str(path))
    start = [b.start or 0 for b in box][::-1]  # ITK index order x, y, z
    size = [min(b.stop, n) - (b.start or 0) for b, n in zip(box, img.GetSize()[::-1], strict=True)][::-1]
    sitk.WriteImage(sitk.RegionOfInterest(img, size, start), str(path))


def test_a_tumour_cut_by_the_ct_field_of_view_is_not_assessable(
    case_copy: Path, specimen_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(specimen_case / "tumour.nii.gz"))) > 0
    centre_z = int(np.argwhere(tumour)[:, 0].mean())
    _crop_nifti(case_copy / "ct.nii.gz", (slice(0, centre_z), slice(0, 10**6), slice(0, 10**6)))
    _refused(assess_argv(case_copy, tmp_path / "a"), capsys, "not assessable", "tumour reaches the edge", "last slice")


def test_a_specimen_cut_far_from_the_tumour_is_assessed_with_a_warning(
    case_copy: Path, specimen_case: Path, tmp_path: Path
) -> None:
    tissue = sitk.GetArrayFromImage(sitk.ReadImage(str(specimen_case / "specimen.nii.gz"))) > 0
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(specimen_case / "tumour.nii.gz"))) > 0
    z_tissue, z_tumour = np.argwhere(tissue)[:, 0], np.argwhere(tumour)[:, 0]
    far_end = z_tissue.max() if z_tumour.mean() < z_tissue.mean() else z_tissue.min()
    cut = int(far_end - 3 if far_end == z_tissue.max() else far_end + 3)  # a 3-slice slab off the far end
    z_box = slice(0, cut) if far_end == z_tissue.max() else slice(cut, 10**6)
    box = (z_box, slice(0, 10**6), slice(0, 10**6))
    _crop_nifti(case_copy / "ct.nii.gz", box)
    assert main(assess_argv(case_copy, tmp_path / "a")) == 0
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert any("reaches the edge of the CT's field of view" in w for w in result["warnings"])
    assert "Warnings" in (tmp_path / "a" / "report.html").read_text()


def test_a_pet_covering_half_the_specimen_is_not_assessable(
    case_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pet = sitk.ReadImage(str(case_copy / "pet.nii.gz"))
    nz = pet.GetSize()[2]
    _crop_nifti(case_copy / "pet.nii.gz", (slice(0, nz * 3 // 5), slice(0, 10**6), slice(0, 10**6)))
    _refused(assess_argv(case_copy, tmp_path / "a"), capsys, "not assessable", "outside the PET's field of view")
