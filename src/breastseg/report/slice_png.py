"""One slice of a CT with mask contours as a PNG, fast enough to follow a slider (the web viewer's images).

Arrays are ``(z, y, x)`` with ``spacing`` ``(dz, dy, dx)`` in mm. Views: ``axial`` (a z slice, rows y, columns
x), ``coronal`` (a y slice, rows z flipped so that superior is up), ``sagittal`` (an x slice, rows z flipped,
columns y). The slice is resized so that one screen pixel is the same length along both axes. Colours follow the
report figures: specimen blue, tumour orange.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage

from breastseg.errors import InputError

VIEWS = ("axial", "coronal", "sagittal")
#: view → the array axis it cuts
VIEW_AXIS = {"axial": 0, "coronal": 1, "sagittal": 2}


def _plane(volume: np.ndarray, view: str, index: int) -> np.ndarray:
    plane = np.take(volume, index, axis=VIEW_AXIS[view])
    return plane if view == "axial" else plane[::-1]  # superior up


def slice_png(
    ct: np.ndarray,
    spacing: Sequence[float],
    view: str,
    index: int,
    contours: Mapping[str, np.ndarray] | None = None,
    window_hu: tuple[float, float] = (-300.0, 300.0),
    mm_per_pixel: float | None = None,
) -> bytes:
    """PNG bytes of slice ``index`` of ``view`` with each mask's outline in its ``#rrggbb`` colour (key).

    Raises:
        InputError: an unknown view or an index outside the volume.
    """
    if view not in VIEW_AXIS:
        raise InputError(f"unknown view {view!r}; one of {', '.join(VIEWS)}")
    axis = VIEW_AXIS[view]
    if not 0 <= index < ct.shape[axis]:
        raise InputError(f"{view} slice {index} is outside 0…{ct.shape[axis] - 1}")
    lo, hi = window_hu
    grey = np.clip((_plane(ct, view, index).astype(np.float32) - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    for colour, mask in (contours or {}).items():
        plane = _plane(np.asarray(mask, bool), view, index)
        edge = plane & ~ndimage.binary_erosion(plane)
        rgb[edge] = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    row_mm, col_mm = [s for k, s in enumerate(spacing) if k != axis]
    step = mm_per_pixel or min(row_mm, col_mm)
    size = (max(1, round(rgb.shape[1] * col_mm / step)), max(1, round(rgb.shape[0] * row_mm / step)))
    image = PILImage.fromarray(rgb)
    if size != (rgb.shape[1], rgb.shape[0]):
        image = image.resize(size, PILImage.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
