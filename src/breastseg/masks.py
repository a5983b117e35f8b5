"""Binary-mask building blocks shared by every workflow: connected components, hole filling, field of view.

Masks are boolean NumPy arrays in array order ``(z, y, x)`` or ``(y, x)``. Connected components use
``connected-components-3d`` (about 3x faster than ``scipy.ndimage.label`` with identical components).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

import cc3d
import edt
import numpy as np
from scipy import ndimage

from breastseg.image import Grid, Image, bounding_box
from breastseg.machine import usable_cores

Connectivity = Literal[4, 8, 6, 18, 26]

#: the specimen study's rule: a margin of at most this many mm is positive
POSITIVE_MARGIN_MM = 0.1
#: margins are read and reported to 1e-4 mm
MARGIN_DECIMALS = 4


def _default_connectivity(ndim: int) -> int:
    return 26 if ndim == 3 else 8


def outside_voxels(mask: Image, grid: Grid) -> int:
    """How many of ``mask``'s foreground voxels (``> 0``) have their centre outside ``grid``'s field of view
    (beyond the outer voxels' half-width): what a nearest-neighbour resampling onto ``grid`` would lose."""
    foreground = np.argwhere(np.asarray(mask.array) > 0)
    if not len(foreground):
        return 0
    index = grid.world_to_index(mask.grid.index_to_world(foreground.astype(float)))
    return int(np.any((index < -0.5) | (index > np.asarray(grid.shape) - 0.5), axis=1).sum())


def label_components(mask: np.ndarray, connectivity: int | None = None) -> tuple[np.ndarray, int]:
    """Label connected components (background 0, components 1..n); 26-/8-connectivity by default."""
    mask = np.asarray(mask, dtype=bool)
    conn = cast(Connectivity, connectivity or _default_connectivity(mask.ndim))
    if mask.ndim == 2 and conn == 8:
        # cc3d 4.1's 2D 8-connected labelling can leave gaps in the labels and split components on masks with
        # thousands of them (a thresholded noisy map: 8334 labels for 7117 components); one slice labelled as a
        # volume with 26-connectivity is the same neighbourhood and is right
        labels, n = cc3d.connected_components(mask[None], connectivity=26, return_N=True)
        return labels[0], int(n)
    labels, n = cc3d.connected_components(mask, connectivity=conn, return_N=True)
    return labels, int(n)


def largest_component(mask: np.ndarray, connectivity: int | None = None) -> np.ndarray:
    """Keep only the largest connected component; an empty mask is returned empty."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    conn = cast(Connectivity, connectivity or _default_connectivity(mask.ndim))
    return np.asarray(cc3d.largest_k(mask, k=1, connectivity=conn) > 0)


def margin_is_positive(margin_mm: float, threshold_mm: float = POSITIVE_MARGIN_MM) -> bool:
    """The margin rule on the margin as reported (rounded to :data:`MARGIN_DECIMALS`), so that the status always
    agrees with the printed number: a float32 depth map reads a one-voxel gap of 0.1 mm as 0.1000000015 mm."""
    return round(float(margin_mm), MARGIN_DECIMALS) <= round(float(threshold_mm), MARGIN_DECIMALS)


def depth_below_surface_mm(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Face-to-face depth (mm) of every voxel of ``mask`` below its surface; 0 outside the mask.

    The gap between the voxel's cube and the nearest cube outside the mask (outside the array counts as outside):
    the Euclidean distance (true spacing, ``edt``) from the voxel's centre to the nearest centre of the outside
    grown by its 26 neighbours, which for each axis is the centre distance less one voxel of that axis where the
    two differ. A voxel that touches the outside — at a face, an edge or a corner — has depth 0; along an axis it is
    the tissue's thickness in whole voxels. (A centre distance less one voxel would read an edge or corner contact
    as (√2 − 1) or (√3 − 1) voxels: 0.12 mm on a 0.3 mm grid, above the 0.1 mm margin rule.) The specimen margin
    and the specimen phantom's truth both use it.
    """
    m = np.asarray(mask, dtype=bool)
    # the voxels none of whose 26 neighbours is outside: every other voxel of the mask touches the outside
    core = ndimage.minimum_filter(m.view(np.uint8), size=3, mode="constant", cval=0) > 0  # separable: fast
    dist = edt.edt(
        np.ascontiguousarray(core, dtype=np.uint8),
        anisotropy=tuple(float(s) for s in spacing),
        black_border=True,
        parallel=usable_cores(),
    )  # exact whatever the thread count
    return np.where(core, dist, 0.0).astype(np.float32)


def voxel_centre_depth_mm(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """The depth the specimen phantom's generator places its tumours by (kept so that every phantom of a seed
    stays as it was): the distance from each voxel's centre to the nearest voxel centre outside ``mask`` less one
    voxel of the finest axis; 0 outside. Not a margin: an edge or corner contact reads above 0 (see
    :func:`depth_below_surface_mm`)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    dist = edt.edt(m, anisotropy=tuple(float(s) for s in spacing), black_border=True, parallel=usable_cores())
    return np.where(m > 0, np.maximum(dist - min(spacing), 0.0), 0.0).astype(np.float32)


def distance_to_mask_mm(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Euclidean distance (mm, true spacing, ``edt``) from every voxel centre to the nearest voxel centre of
    ``mask`` (0 in the mask; ``inf`` everywhere when the mask is empty). Exact, like a nearest-neighbour search
    among the mask's voxels, and the nearest mask voxel of an outside point is always on the mask's surface."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.full(m.shape, np.inf, np.float32)
    outside = np.ascontiguousarray(~m, dtype=np.uint8)
    dist = edt.edt(outside, anisotropy=tuple(float(s) for s in spacing), black_border=False, parallel=usable_cores())
    return np.asarray(dist, np.float32)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the background regions that do not touch the array border (in 3D, holes enclosed in 3D).

    The same set as ``scipy.ndimage.binary_fill_holes`` (background reaching the border through face neighbours
    stays background), found as connected components of the background instead of by iterated dilation: about
    ten times faster on a micro-CT volume."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0 or m.all():
        return m.copy()
    background, _ = label_components(~m, 2 * m.ndim)  # face connectivity: 6 in 3D, 4 in 2D
    border = np.zeros(background.max() + 1, bool)
    for axis in range(m.ndim):
        for end in (0, -1):
            border[np.unique(np.take(background, end, axis=axis))] = True
    border[0] = True  # label 0 is the mask itself
    return m | ~border[background]


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with at least one face neighbour outside it (array border counts as outside).

    Same set as ``mask ^ scipy.ndimage.binary_erosion(mask)`` (MONAI's edges), computed with shifted
    boolean ANDs, several times faster.
    """
    m = np.asarray(mask, dtype=bool)
    padded = np.pad(m, 1)
    core = tuple(slice(1, -1) for _ in range(m.ndim))
    eroded = padded[core].copy()
    for axis in range(m.ndim):
        for lo, hi in ((0, -2), (2, None)):
            sl = list(core)
            sl[axis] = slice(lo, hi)
            eroded &= padded[tuple(sl)]
    return m & ~eroded


def binarize(
    probability: np.ndarray,
    threshold: float = 0.5,
    fill: bool = True,
    keep_largest: bool = True,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Probability map → mask: ``≥ threshold``, holes filled, optionally only the largest component.

    Args:
        within: restrict the mask to this region (e.g. the tissue) after filling.
    """
    mask = np.asarray(probability) >= threshold
    if within is not None:
        mask &= np.asarray(within, dtype=bool)
    box = bounding_box(mask)
    if box is None:
        return mask
    # filling and labelling inside the bounding box give the same result, much faster
    sub = mask[box]
    if fill:
        sub = fill_holes(sub)
        if within is not None:
            sub &= np.asarray(within, dtype=bool)[box]
    if keep_largest:
        sub = largest_component(sub)
    out = np.zeros_like(mask)
    out[box] = sub
    return out
