"""2D raster images (PNG, JPEG, BMP, TIFF) through Pillow.

Raster files carry no physical pixel size, so spacing defaults to 1.0 per pixel unless the caller
gives it (ultrasound exports rarely record it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.atomic import atomic_path

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_raster(
    path: Path,
    *,
    spacing: Sequence[float] = (1.0, 1.0),
    modality: str | None = None,
    units: str | None = None,
) -> Image:
    """Read a 2D raster as a greyscale :class:`Image` ``(y, x)``.

    RGB images whose three channels are equal become their single channel; coloured RGB(A) images are
    converted to luma (ITU-R 601), which keeps burned-in annotations visible but grey. 1-bit images
    become ``bool``.
    """
    try:
        with PILImage.open(path) as pil:
            pil.load()
            mode = pil.mode
            arr = np.asarray(pil)
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: cannot read as a raster image ({exc})") from exc
    if mode == "1":
        arr = arr.astype(bool)
    elif arr.ndim == 3:
        rgb = arr[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            arr = rgb[..., 0].copy()
        else:
            luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            arr = np.clip(np.round(luma), 0, 255).astype(np.uint8)
    return Image(arr, spacing=tuple(spacing), modality=modality, units=units)


def write_raster(image: Image, path: Path) -> Path:
    """Write a 2D image as PNG/JPEG/TIFF; ``bool`` masks are written as 0/255 (8-bit)."""
    if image.ndim != 2:
        raise InputError(f"{path}: a raster file holds a 2D image, got shape {image.shape}; use NIfTI for 3D")
    arr = image.array
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: raster files hold 8/16-bit integers, got {arr.dtype}; write floats as NIfTI or .npz")
    with atomic_path(path) as tmp:
        PILImage.fromarray(arr).save(tmp, format=_PIL_FORMATS[path.suffix.lower()])
    return path


_PIL_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
