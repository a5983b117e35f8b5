"""DCE features of a registered dynamic series (Hirsch et al. 2022, Fig. 2A), voxel by voxel.

Inputs are the pre-contrast T1 and the post-contrast T1c phases, already on one grid (registered onto the first
T1c) and harmonised (divided by the 95th percentile of the breast's pre-contrast T1, so values are unitless).

* ``t1c`` — the first post-contrast phase;
* ``dce_in`` — initial uptake, ``T1c₁ − T1``;
* ``dce_out`` — the least-squares slope of the post-contrast phases against their acquisition time, per minute
  (negative: wash-out; positive: persistent enhancement). With one post-contrast phase it is 0.

Times are seconds from any common origin (the injection, the first phase …); only differences matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from breastseg.errors import InputError


@dataclass(eq=False)
class DceFeatures:
    """The network's input features, each ``(z, y, x)`` float32 (see the module docstring)."""

    t1c: np.ndarray
    dce_in: np.ndarray
    dce_out_per_min: np.ndarray

    def stack(self) -> np.ndarray:
        """``(3, z, y, x)``: T1c, DCE-in, DCE-out — the study's channel order."""
        return np.stack([self.t1c, self.dce_in, self.dce_out_per_min]).astype(np.float32)


def washout_slope_per_min(post: Sequence[np.ndarray], times_s: Sequence[float]) -> np.ndarray:
    """Ordinary least-squares slope of intensity against time (per minute) over the post-contrast phases."""
    if len(post) != len(times_s):
        raise InputError(f"{len(post)} post-contrast phases but {len(times_s)} acquisition times")
    if len(post) < 2:
        return np.zeros(np.shape(post[0]), np.float32)
    t = np.asarray(times_s, np.float64) / 60.0
    if np.ptp(t) <= 0:
        raise InputError(f"post-contrast acquisition times must differ, got {list(times_s)} s")
    dt = t - t.mean()
    stack = np.stack([np.asarray(p, np.float64) for p in post])
    mean = stack.mean(axis=0)
    slope = np.tensordot(dt, stack - mean, axes=1) / float(dt @ dt)
    return slope.astype(np.float32)


def dce_features(pre: np.ndarray, post: Sequence[np.ndarray], post_times_s: Sequence[float]) -> DceFeatures:
    """T1c, DCE-in and DCE-out from a registered, harmonised pre-contrast T1 and post-contrast phases.

    Raises:
        InputError: no post-contrast phase, shapes that differ, or times that do not match the phases.
    """
    if not post:
        raise InputError("a DCE exam needs at least one post-contrast phase")
    shapes = {np.shape(pre), *(np.shape(p) for p in post)}
    if len(shapes) > 1:
        raise InputError(f"DCE phases must share one grid (register them first); shapes {sorted(shapes)}")
    order = np.argsort(np.asarray(post_times_s, float), kind="stable")
    if not np.array_equal(order, np.arange(len(post))):
        raise InputError(f"post-contrast phases must be in acquisition order; times {list(post_times_s)} s")
    first = np.asarray(post[0], np.float32)
    return DceFeatures(first, first - np.asarray(pre, np.float32), washout_slope_per_min(post, post_times_s))
