"""A breast mask by a simple, documented method: body/air threshold, then a chest-wall cut.

1. **Body** — voxels brighter than ``air_fraction`` × the image's 99th percentile (air is near zero even with fat
   suppression), holes filled slice by slice, the largest connected component kept.
2. **Chest wall** — along the patient's anterior–posterior axis (found from the image direction: the array axis
   closest to LPS y, posterior = +y), the first plane, coming from the front, in which the body covers at least
   ``wall_coverage`` of the plane is the chest wall: the thorax fills the field of view from side to side, the
   breast does not. The breast is the body anterior to that plane, less ``wall_margin_mm``.

The mask is a spatial prior channel for the network and restricts post-processing; it is not a segmentation of
the fibroglandular tissue.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.masks import largest_component


def breast_mask(
    image: Image, air_fraction: float = 0.1, wall_coverage: float = 0.9, wall_margin_mm: float = 3.0
) -> np.ndarray:
    """The breast (bool, on ``image``'s grid) of a T1 or T1c volume (see the module docstring).

    Raises:
        InputError: no body found above the air threshold.
    """
    a = np.asarray(image.array, np.float32)
    top = float(np.percentile(a, 99))
    body = a > air_fraction * top
    if not body.any():
        raise InputError("breast mask: nothing above the air threshold (an empty or all-dark image?)")
    body = np.stack([ndimage.binary_fill_holes(s) for s in body])
    body = largest_component(body, connectivity=6)
    axis, posterior_high = image.grid.patient_axis(1)
    moved = np.moveaxis(body, axis, 0)
    if posterior_high is False:
        moved = moved[::-1]
    coverage = moved.reshape(moved.shape[0], -1).mean(axis=1)
    wall_planes = np.flatnonzero(coverage >= wall_coverage)
    first_breast = int(np.argmax(coverage > 0))
    wall = int(wall_planes[wall_planes > first_breast][0]) if (wall_planes > first_breast).any() else moved.shape[0]
    margin = round(wall_margin_mm / image.spacing[axis])
    keep = np.zeros(moved.shape[0], bool)
    keep[: max(0, wall - margin)] = True
    out = moved & keep.reshape(-1, *([1] * (moved.ndim - 1)))
    if posterior_high is False:
        out = out[::-1]
    return np.moveaxis(out, 0, axis)
