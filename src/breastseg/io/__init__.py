"""Reading and writing images: one ``read_image`` for every format, one ``write_image`` back.

| format                | read | write | geometry                      |
|-----------------------|------|-------|-------------------------------|
| DICOM series (folder) | yes  | yes*  | full (from the headers)       |
| NIfTI / NRRD / MHA    | yes  | yes   | full (SimpleITK)              |
| PNG / JPEG / TIFF     | yes  | yes   | 2D, spacing given or 1.0      |
| NumPy ``.npz``        | yes  | yes   | full, plus modality and units |

\\* with :func:`write_dicom_series`, which needs the modality and study identifiers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.dicom import (
    DicomSeries,
    is_dicom_file,
    list_dicom_series,
    read_dicom_phases,
    read_dicom_series,
)
from breastseg.io.dicom_write import StudyIdentity, write_dicom_series
from breastseg.io.itk import ITK_SUFFIXES, read_itk, write_itk
from breastseg.io.npz import read_npz, write_npz
from breastseg.io.raster import RASTER_SUFFIXES, read_raster, write_raster

__all__ = [
    "DicomSeries",
    "StudyIdentity",
    "image_format",
    "list_dicom_series",
    "read_dicom_phases",
    "read_dicom_series",
    "read_image",
    "write_dicom_series",
    "write_image",
]


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def image_format(path: str | os.PathLike[str]) -> str:
    """``"dicom"``, ``"itk"``, ``"raster"`` or ``"npz"`` for an existing path (a folder is DICOM)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    suffix = _suffix(p)
    if p.is_dir():
        return "dicom"
    if suffix in ITK_SUFFIXES:
        return "itk"
    if suffix in RASTER_SUFFIXES:
        return "raster"
    if suffix == ".npz":
        return "npz"
    if suffix == ".dcm" or is_dicom_file(p):
        return "dicom"
    raise InputError(
        f"{p}: unknown image format {suffix!r}; breastseg reads DICOM folders, "
        f"{', '.join(ITK_SUFFIXES + RASTER_SUFFIXES)} and .npz"
    )


def read_image(
    path: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    modality: str | None = None,
    units: str | None = None,
    spacing: Sequence[float] | None = None,
) -> Image:
    """Read any supported image into an :class:`Image` with its geometry.

    Args:
        path: a DICOM folder or file, NIfTI/NRRD/MHA, PNG/JPEG/TIFF or ``.npz``.
        series_uid: for DICOM folders holding several series.
        modality: for DICOM, pick the series of this modality; for other formats, record it.
        units: record the value units for formats that do not store them (NIfTI, PNG).
        spacing: pixel size (mm, ``(y, x)``) for raster images, which do not store it.
    """
    p = Path(path)
    kind = image_format(p)
    if kind == "dicom":
        img = read_dicom_series(p, series_uid=series_uid, modality=modality).image
        return img if units is None else img.with_array(img.array, units=units)
    if kind == "itk":
        return read_itk(p, modality=modality, units=units)
    if kind == "raster":
        return read_raster(p, spacing=spacing or (1.0, 1.0), modality=modality, units=units)
    return read_npz(p)


def write_image(image: Image, path: str | os.PathLike[str]) -> Path:
    """Write an image to NIfTI/NRRD/MHA, PNG/JPEG/TIFF or ``.npz`` (by suffix), atomically."""
    p = Path(path)
    suffix = _suffix(p)
    if suffix in ITK_SUFFIXES:
        return write_itk(image, p)
    if suffix in RASTER_SUFFIXES:
        return write_raster(image, p)
    if suffix == ".npz":
        return write_npz(image, p)
    raise InputError(
        f"{p}: cannot write {suffix!r}; use .nii.gz, .nrrd, .mha, .png or .npz (DICOM: write_dicom_series)"
    )
