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


#: Pillow modes whose pixels are colours of another model: converted to RGB exactly by Pillow
_TO_RGB = {"P": "RGB", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}
#: Pillow modes of grey values deeper than 8 bits
_DEEP_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def read_pixels(path: Path, scale_deep_grey: bool = True) -> np.ndarray:
    """The pixels of a PNG/JPEG/TIFF/BMP image as grey or RGB(A) values (2D, or colour with a last axis).

    Every Pillow mode is decoded to what it shows: a palette image by its palette, CMYK / YCbCr / Lab / HSV
    by Pillow's conversion to RGB, grey with alpha as its grey, 1-bit as 0 / 255. Grey deeper than 8 bits
    (16-bit PNG/TIFF, 32-bit integer or float) is, with ``scale_deep_grey``, scaled to 0–255 from its bit depth —
    values up to 255 are 8-bit data in a deeper container and stay; otherwise the smallest depth of 2^k − 1 ≥ the
    maximum (12-bit, 16-bit …) maps to 255 — and else kept as stored. Refused: multi-page files (a cine loop:
    export one frame) and negative or non-finite deep grey values.
    """
    try:
        with PILImage.open(path) as im:
            frames = int(getattr(im, "n_frames", 1) or 1)
            if frames > 1:
                raise InputError(f"{path}: holds {frames} frames (pages); export the one frame to segment")
            im.load()
            mode = im.mode
            decoded: PILImage.Image = im
            if mode in _TO_RGB:
                decoded = im.convert(_TO_RGB[mode])
            elif mode == "LA":
                decoded = im.getchannel("L")
            elif mode == "1":
                decoded = im.convert("L")
            array = np.asarray(decoded)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(f"{path}: cannot read as a raster image ({exc})") from exc
    if mode in _DEEP_GREY and scale_deep_grey:
        array = _deep_grey_to_8_bit(array.astype(np.float64), path)
    return array


def _deep_grey_to_8_bit(values: np.ndarray, path: Path) -> np.ndarray:
    if not np.all(np.isfinite(values)) or values.min() < 0:
        raise InputError(f"{path}: grey values must be finite and non-negative (got {values.min():g}…{values.max():g})")
    top = float(values.max())
    if top <= 255:
        return values.astype(np.float32)
    depth = float(2 ** int(np.ceil(np.log2(top + 1))) - 1)
    return (values * (255.0 / depth)).astype(np.float32)


def read_label_pixels(path: Path) -> np.ndarray:
    """The stored values of a mask image (palette indices as they are: they are the labels), 2D."""
    try:
        with PILImage.open(path) as im:
            im.load()
            array = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(f"{path}: cannot read as a raster image ({exc})") from exc
    return array[..., 0] if array.ndim == 3 else array


def read_raster(
    path: Path,
    *,
    spacing: Sequence[float] = (1.0, 1.0),
    modality: str | None = None,
    units: str | None = None,
) -> Image:
    """Read a 2D raster as a greyscale :class:`Image` ``(y, x)``.

    Pixels are decoded as :func:`read_pixels` decodes them (colour models; multi-page files refused), except that
    deep grey keeps its stored values and palette images, which are label maps, their indices; 1-bit images
    become ``bool``. RGB images whose three channels are equal become their single channel; coloured RGB(A)
    images are converted to luma (ITU-R 601), which keeps burned-in annotations visible but grey.
    """
    mode = _mode(path)
    # a palette image is a label map (its indices are the labels); a general reader keeps stored deep grey values
    arr = read_label_pixels(path) if mode in ("P", "PA") else read_pixels(path, scale_deep_grey=False)
    if mode == "1":
        arr = arr > 0
    if arr.ndim == 3:
        rgb = arr[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            arr = rgb[..., 0].copy()
        else:
            luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            arr = np.clip(np.round(luma), 0, 255).astype(np.uint8)
    return Image(arr, spacing=tuple(spacing), modality=modality, units=units)


def _mode(path: Path) -> str:
    try:
        with PILImage.open(path) as pil:
            return str(pil.mode)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(f"{path}: cannot read as a raster image ({exc})") from exc


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
