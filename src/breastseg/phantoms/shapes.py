"""Building blocks for synthetic phantoms: smooth random fields and irregular blobs on a grid.

All functions take a :class:`~breastseg.image.Grid` (array order ``(z, y, x)``, spacing in mm) and a NumPy
``Generator`` so that a phantom is fully determined by its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from breastseg.image import Grid
from breastseg.masks import fill_holes, largest_component


def smooth_field(grid: Grid, correlation_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with the given correlation length (mm).

    Drawn on a coarse grid (a quarter of the correlation length per cell) and interpolated linearly, so
    the cost does not grow with the fine grid's resolution.
    """
    cell = max(correlation_mm / 4.0, min(grid.spacing))
    coarse_shape = [max(4, int(np.ceil(n * s / cell)) + 4) for n, s in zip(grid.shape, grid.spacing, strict=True)]
    noise = rng.standard_normal(coarse_shape)
    noise = ndimage.gaussian_filter(noise, sigma=correlation_mm / cell / 2.0, mode="wrap")
    noise = (noise - noise.mean()) / (noise.std() + 1e-12)
    coords = np.meshgrid(
        *[(np.arange(n) * s) / cell + 2.0 for n, s in zip(grid.shape, grid.spacing, strict=True)],
        indexing="ij",
        sparse=True,
    )
    full = [np.broadcast_to(c, grid.shape) for c in coords]
    return ndimage.map_coordinates(noise, full, order=1, mode="nearest").astype(np.float32)


def ellipsoid_level(
    grid: Grid, centre_index: Sequence[float] | np.ndarray, radii_mm: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Normalised radial level ``sqrt(Σ ((p - c) / r)²)`` of each voxel (array order); < 1 is inside."""
    axes = [
        ((np.arange(n) - c) * s / r)
        for n, c, s, r in zip(grid.shape, centre_index, grid.spacing, radii_mm, strict=True)
    ]
    sq = sum(a.reshape([-1 if i == k else 1 for i in range(grid.ndim)]) ** 2 for k, a in enumerate(axes))
    return np.sqrt(np.asarray(sq, dtype=np.float32))


def irregular_blob(
    grid: Grid,
    centre_index: Sequence[float] | np.ndarray,
    radii_mm: Sequence[float] | np.ndarray,
    irregularity: float,
    correlation_mm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """An ellipsoid whose surface is pushed in and out by a smooth random field.

    Args:
        centre_index: centre in array indices (array order).
        radii_mm: semi-axes in mm (array order).
        irregularity: field amplitude relative to the radius (0 = the ellipsoid; 0.3 = lobulated).
        correlation_mm: size of the bumps.

    Returns:
        A boolean mask: one connected component without holes.
    """
    level = ellipsoid_level(grid, centre_index, radii_mm)
    if irregularity > 0:
        level = level + irregularity * smooth_field(grid, correlation_mm, rng)
    return fill_holes(largest_component(level < 1.0, connectivity=6 if grid.ndim == 3 else 4))
