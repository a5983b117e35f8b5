"""The study's post-processing of the tumour probability: a threshold relative to the maximum, and only the
connected regions that contain the maximum (Hirsch et al. 2022: 0.6 of the slice's maximum, chosen on 16 test
exams).

``per_slice`` (the study's, which segmented one 2D slice known to hold the cancer): each slice along ``axis`` is
thresholded at ``fraction`` × that slice's maximum and keeps the 2D component(s) holding that maximum; slices
whose maximum is below ``min_probability`` are empty. Otherwise (the volume): one threshold at ``fraction`` × the
volume's maximum and the 3D component(s) holding it. Components are face-connected (6 in 3D, 4 in 2D).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from breastseg.errors import InputError


def keep_max_components(probability: np.ndarray, fraction: float = 0.6, min_probability: float = 0.0) -> np.ndarray:
    """``probability ≥ fraction × max`` restricted to the connected component(s) containing a maximal voxel.

    Ties: every component that holds a voxel at the maximum is kept. An array whose maximum is ≤ 0 or below
    ``min_probability`` gives an empty mask.
    """
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"threshold fraction must be in (0, 1], got {fraction}")
    p = np.asarray(probability, np.float64)
    peak = float(p.max()) if p.size else 0.0
    if peak <= 0.0 or peak < min_probability:
        return np.zeros(p.shape, bool)
    above = p >= fraction * peak
    labels, _ = ndimage.label(above)  # face connectivity
    keep = np.unique(labels[p == peak])
    return np.isin(labels, keep[keep > 0])


def postprocess(
    probability: np.ndarray, fraction: float = 0.6, per_slice: bool = False, axis: int = 0, min_probability: float = 0.5
) -> np.ndarray:
    """The study's mask from a tumour probability (see the module docstring)."""
    p = np.asarray(probability)
    if not per_slice:
        return keep_max_components(p, fraction, min_probability)
    moved = np.moveaxis(p, axis, 0)
    out = np.stack([keep_max_components(s, fraction, min_probability) for s in moved])
    return np.moveaxis(out, 0, axis)
