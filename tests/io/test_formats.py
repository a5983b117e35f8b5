"""NIfTI / NRRD / MHA / PNG / npz: geometry round trips, a peer library's view, and bad input."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import read_image, write_image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".npz"])
def test_round_trip_keeps_values_and_geometry(tmp_path: Path, oblique_image: Image, suffix: str) -> None:
    path = write_image(oblique_image, tmp_path / f"img{suffix}")
    back = read_image(path)
    np.testing.assert_array_equal(back.array, oblique_image.array)
    np.testing.assert_allclose(back.spacing, oblique_image.spacing, rtol=1e-6)
    np.testing.assert_allclose(back.origin, oblique_image.origin, atol=1e-4)
    np.testing.assert_allclose(back.direction, oblique_image.direction, atol=1e-5)
    if suffix == ".npz":
        assert (back.modality, back.units) == ("CT", "HU")


def test_nifti_geometry_agrees_with_nibabel(tmp_path: Path, oblique_image: Image) -> None:
    """nibabel reads NIfTI in RAS with (i, j, k) = (x, y, z) indices; LPS → RAS flips x and y."""
    path = write_image(oblique_image, tmp_path / "img.nii.gz")
    nii = nib.load(path)
    data = np.asarray(nii.dataobj)
    np.testing.assert_array_equal(data.transpose(2, 1, 0), oblique_image.array)
    for idx_zyx in [(0, 0, 0), (6, 10, 12), (2, 5, 7)]:
        ras = nii.affine @ np.array([*idx_zyx[::-1], 1.0])
        lps = ras[:3] * np.array([-1.0, -1.0, 1.0])
        np.testing.assert_allclose(lps, oblique_image.grid.index_to_world(idx_zyx), atol=1e-4)


def test_nifti_written_by_nibabel_is_read_with_its_geometry(tmp_path: Path) -> None:
    affine_ras = np.array([[-0.8, 0, 0, 30.0], [0, 0.9, 0, -12.0], [0, 0, 2.5, 7.0], [0, 0, 0, 1]])
    data = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)  # (x, y, z)
    nib.save(nib.Nifti1Image(data, affine_ras), tmp_path / "n.nii.gz")
    img = read_image(tmp_path / "n.nii.gz")
    assert img.shape == (7, 6, 5)
    assert img.spacing == pytest.approx((2.5, 0.9, 0.8))
    np.testing.assert_allclose(img.origin, [-30.0, 12.0, 7.0])
    assert img.array[3, 2, 1] == data[1, 2, 3]


def test_png_reading_and_writing(tmp_path: Path) -> None:
    arr = (np.arange(12 * 9).reshape(12, 9) % 256).astype(np.uint8)
    write_image(Image(arr, spacing=(1.0, 1.0)), tmp_path / "a.png")
    back = read_image(tmp_path / "a.png", spacing=(0.1, 0.2))
    np.testing.assert_array_equal(back.array, arr)
    assert back.spacing == (0.1, 0.2)
    mask = arr > 100
    write_image(Image(mask, spacing=(1.0, 1.0)), tmp_path / "m.png")
    np.testing.assert_array_equal(read_image(tmp_path / "m.png").array > 0, mask)


def test_rgb_png_with_equal_channels_becomes_grey(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    grey = np.random.default_rng(1).integers(0, 255, size=(10, 8)).astype(np.uint8)
    PILImage.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png").array, grey)


def test_float_png_is_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="NIfTI"):
        write_image(Image(np.zeros((3, 3), np.float32), spacing=(1, 1)), tmp_path / "f.png")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.nii\.gz: no such file"):
        read_image(tmp_path / "nope.nii.gz")


def test_wrong_dimensionality_is_refused(tmp_path: Path) -> None:
    four_d = sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), np.float32), isVector=False)
    sitk.WriteImage(four_d, str(tmp_path / "4d.nii.gz"))
    with pytest.raises(InputError, match=r"4d\.nii\.gz: has 4 dimensions"):
        read_image(tmp_path / "4d.nii.gz")


def test_unknown_and_corrupt_files(tmp_path: Path) -> None:
    (tmp_path / "x.xyz").write_text("?")
    with pytest.raises(InputError, match="unknown image format"):
        read_image(tmp_path / "x.xyz")
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti at all")
    with pytest.raises(InputError, match=r"bad\.nii\.gz: (cannot read|the file is cut short or corrupt)"):
        read_image(tmp_path / "bad.nii.gz")


def test_failed_write_leaves_the_earlier_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oblique_image: Image
) -> None:
    target = tmp_path / "out.nii.gz"
    write_image(oblique_image, target)
    before = target.read_bytes()

    def crash(image: sitk.Image, path: str, useCompression: bool = False) -> None:
        Path(path).write_bytes(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image(oblique_image.with_array(oblique_image.array * 2), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


def test_real_breast_mri_nrrd(data_dir: Path) -> None:
    folder = data_dir / "mri-breast1"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    img = read_image(folder / "breast1_image.nrrd")
    label = read_image(folder / "breast1_label.nrrd")
    # SOURCE.md: 45×120×21 voxels (x, y, z), 0.664062 × 0.664062 × 2.1 mm, origin (-116.54, -48.14, 9.45)
    assert img.shape == (21, 120, 45)
    assert img.spacing == pytest.approx((2.1, 0.664062, 0.664062), abs=1e-6)
    np.testing.assert_allclose(img.origin, (-116.54, -48.14, 9.45), atol=0.01)
    assert int(img.array.min()) == 6 and int(img.array.max()) == 248
    assert label.grid.same_as(img.grid)
    assert int((label.array > 0).sum()) == 143
    assert (label.array > 0).sum() * label.voxel_volume_ml == pytest.approx(0.1324, abs=1e-3)
