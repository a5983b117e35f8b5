"""NIfTI, NRRD and MetaImage (MHA/MHD) through SimpleITK, which keeps the geometry exactly."""

from __future__ import annotations

import gzip
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.atomic import atomic_path

ITK_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


_NIFTI_FLOATS = {16: "f4", 64: "f8"}


@dataclass(frozen=True)
class _NiftiLayout:
    offset: int  # bytes before the first voxel
    voxels: int
    bytes_per_voxel: int
    float_dtype: str | None  # NumPy dtype of float voxels, with byte order; None for integers

    @property
    def end(self) -> int:
        return self.offset + self.voxels * self.bytes_per_voxel


def _nifti_layout(header: bytes, path: Path) -> _NiftiLayout | None:
    """Where a NIfTI-1 or NIfTI-2 file's voxels lie, from its header; ``None`` if it is not NIfTI. A header whose
    dimensions, voxel size or data offset are impossible is refused (a damaged file)."""
    for order in ("<", ">"):
        if len(header) >= 348 and struct.unpack(f"{order}i", header[:4])[0] == 348:
            dims = struct.unpack(f"{order}8h", header[40:56])
            datatype, bitpix = struct.unpack(f"{order}2h", header[70:74])
            offset_value = float(struct.unpack(f"{order}f", header[108:112])[0])
            minimum = 352
            break
        if len(header) >= 540 and struct.unpack(f"{order}i", header[:4])[0] == 540:
            datatype, bitpix = struct.unpack(f"{order}2h", header[12:16])
            dims = struct.unpack(f"{order}8q", header[16:80])
            offset_value = float(struct.unpack(f"{order}q", header[168:176])[0])
            minimum = 544
            break
    else:
        return None
    ndim = int(dims[0])
    sizes = [int(d) for d in dims[1 : ndim + 1]] if 1 <= ndim <= 7 else []
    problems = []
    if not sizes or any(n < 1 or n > 2**31 for n in sizes):
        problems.append(f"dimensions {list(dims)}")
    if bitpix not in (1, 8, 16, 24, 32, 64, 128, 256):
        problems.append(f"bits per voxel {bitpix}")
    if not np.isfinite(offset_value) or not 0 <= offset_value < 2**40:
        problems.append(f"data offset {offset_value:g}")
    if problems:
        raise InputError(f"{path}: the NIfTI header is damaged ({', '.join(problems)}); copy or export it again")
    voxels = int(np.prod(sizes, dtype=np.float64))
    kind = _NIFTI_FLOATS.get(int(datatype))
    offset = max(int(offset_value), minimum) if offset_value else minimum
    return _NiftiLayout(offset, voxels, max(int(bitpix), 8) // 8, f"{order}{kind}" if kind else None)


def _count_nonfinite(data: bytes | np.ndarray, layout: _NiftiLayout) -> int:
    assert layout.float_dtype is not None
    values = np.frombuffer(data, dtype=layout.float_dtype, count=layout.voxels, offset=layout.offset)
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def check_nifti(path: Path) -> bytes | None:
    """Refuse a NIfTI file that ends before its last voxel (an interrupted copy), or whose float voxels hold NaN or
    infinity: SimpleITK would read either silently as zeros (a PET with NaN in a lesion would read SUVmax 0).

    A ``.nii.gz`` of integers is checked by the uncompressed size its gzip trailer records (no decompression)
    and, when that disagrees, by decompressing it to the end; float voxels are decompressed and scanned. Returns
    the decompressed file when it had to decompress one (so that it is not decompressed twice), else ``None``.
    """
    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return None
    nonfinite = 0
    data: bytes | None = None
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                layout = _nifti_layout(fh.read(544), path)
            if layout is None:
                return None
            with path.open("rb") as raw:
                raw.seek(-4, 2)
                recorded = struct.unpack("<I", raw.read(4))[0]
            if layout.float_dtype is None and recorded == layout.end % 2**32:
                return None
            # one call that inflates with the GIL released, not a Python loop over chunks: a model loading in a
            # background thread (the ResU-Net's torch import) then does not stall the reading
            data = gzip.decompress(path.read_bytes())
            total = len(data)
            if layout.float_dtype is not None and total >= layout.end:
                nonfinite = _count_nonfinite(data, layout)
        else:
            with path.open("rb") as fh:
                layout = _nifti_layout(fh.read(544), path)
            if layout is None:
                return None
            total = path.stat().st_size
            if layout.float_dtype is not None and total >= layout.end:
                nonfinite = _count_nonfinite(np.memmap(path, dtype=np.uint8, mode="r"), layout)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{path}: the file is cut short or corrupt ({exc}); copy or export it again") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    if total < layout.end:
        raise InputError(
            f"{path}: the file ends after {total} of its {layout.end} bytes (cut short); copy or export it again"
        )
    if nonfinite:
        share = "every voxel" if nonfinite == layout.voxels else f"{nonfinite} of {layout.voxels} voxels"
        raise InputError(
            f"{path}: {share} NaN or infinite; replace them (outside the body by the background value) or re-export "
            "the image"
        )
    return data


def read_itk(path: Path, *, modality: str | None = None, units: str | None = None) -> Image:
    """Read a NIfTI / NRRD / MHA file into an :class:`Image` (scalar, 2D or 3D); a NIfTI cut short or holding NaN
    is refused (:func:`check_nifti`)."""
    data = check_nifti(path)
    try:
        if data is None:
            img = sitk.ReadImage(str(path))
        else:  # already decompressed by the check: ITK reads the bytes uncompressed instead of inflating them again
            with tempfile.TemporaryDirectory(prefix="breastseg-read-") as tmp:
                plain = Path(tmp) / "image.nii"
                plain.write_bytes(data)
                del data
                img = sitk.ReadImage(str(plain))
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
