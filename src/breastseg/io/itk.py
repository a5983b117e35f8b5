"""NIfTI, NRRD and MetaImage (MHA/MHD) through SimpleITK, which keeps the geometry exactly."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.atomic import atomic_path

ITK_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def read_itk(path: Path, *, modality: str | None = None, units: str | None = None) -> Image:
    """Read a NIfTI / NRRD / MHA file into an :class:`Image` (scalar, 2D or 3D)."""
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: cannot read as an image ({first})") from exc
    if img.GetDimension() not in (2, 3):
        raise InputError(
            f"{path}: has {img.GetDimension()} dimensions (size {img.GetSize()}); breastseg reads 2D or 3D "
            "images: split a 4D series into one file per time point or channel"
        )
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: has {img.GetNumberOfComponentsPerPixel()} components per voxel; expected 1")
    return Image.from_sitk(img, modality=modality, units=units)


def write_itk(image: Image, path: Path) -> Path:
    """Write an image as NIfTI / NRRD / MHA (compressed where the format allows), atomically."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(image.to_sitk(), str(tmp), useCompression=True)
    return path
