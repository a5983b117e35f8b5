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


#: overlay values (0–1) below this are not drawn: the PET's background leaves the CT as it is
OVERLAY_FLOOR = 0.05
#: the crosshair's colour and the gap (screen pixels) left open around its centre
CROSS_RGB = (0, 255, 0)
CROSS_GAP = 6


def hot_rgb(level: np.ndarray) -> np.ndarray:
    """The "hot" colour scale (black → red → yellow → white) of values 0–1, as uint8 RGB ``(..., 3)``: red rises
    over the first third, green over the second, blue over the last."""
    x = np.asarray(level, np.float32)[..., None] * 3.0 - np.array([0.0, 1.0, 2.0], np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def plane_position(view: str, index: Sequence[float], shape: Sequence[int]) -> tuple[float, float]:
    """``(row, column)`` of array index ``(z, y, x)`` on the plane of ``view`` as :func:`slice_png` lays it out
    (rows flipped on coronal and sagittal planes), in the plane's own pixels."""
    axis = VIEW_AXIS[view]
    rows_axis, cols_axis = [a for a in range(3) if a != axis]
    row = float(index[rows_axis])
    return (row if view == "axial" else shape[rows_axis] - 1 - row), float(index[cols_axis])


def _draw_cross(
    image: PILImage.Image, view: str, index: Sequence[float], shape: Sequence[int], size: tuple[int, int]
) -> None:
    """A crosshair through ``index``'s position on the resized slice, open around the point itself."""
    from PIL import ImageDraw

    axis = VIEW_AXIS[view]
    rows_axis, cols_axis = [a for a in range(3) if a != axis]
    row, col = plane_position(view, index, shape)
    y = (row + 0.5) * size[1] / shape[rows_axis]
    x = (col + 0.5) * size[0] / shape[cols_axis]
    draw = ImageDraw.Draw(image)
    for a, b in (((0, y), (x - CROSS_GAP, y)), ((x + CROSS_GAP, y), (size[0], y))):
        draw.line([a, b], fill=CROSS_RGB, width=1)
    for a, b in (((x, 0), (x, y - CROSS_GAP)), ((x, y + CROSS_GAP), (x, size[1]))):
        draw.line([a, b], fill=CROSS_RGB, width=1)


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
    overlay: np.ndarray | None = None,
    overlay_opacity: float = 0.0,
    cross: Sequence[float] | None = None,
) -> bytes:
    """PNG bytes of slice ``index`` of ``view`` with each mask's outline in its ``#rrggbb`` colour (key); given an
    ``overlay`` (a volume on the CT's grid scaled 0–1, e.g. the PET) blended on in the hot colour scale at
    ``overlay_opacity`` (0–1; values below :data:`OVERLAY_FLOOR` left out), and a crosshair through the array
    index ``cross`` ``(z, y, x)``.

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
    if overlay is not None and overlay_opacity > 0:
        level = np.clip(_plane(overlay, view, index).astype(np.float32), 0.0, 1.0)
        shown = level >= OVERLAY_FLOOR
        heat = hot_rgb(level[shown])
        rgb[shown] = np.rint((1 - overlay_opacity) * rgb[shown] + overlay_opacity * heat).astype(np.uint8)
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
    if cross is not None:
        _draw_cross(image, view, cross, ct.shape, size)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
