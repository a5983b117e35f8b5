"""3D training patches with nnU-Net-style spatial and intensity augmentation (whole-body PET/CT, MRI).

A patch is sampled, not cut: the output voxel grid (centred on the chosen centre) is mapped through an optional
elastic displacement, rotation (about each axis, or in the (y, x) plane only), isotropic scaling and left-right
mirroring, and every channel is interpolated at the mapped positions from the *whole* volume
(``scipy.ndimage.map_coordinates``; linear for images, nearest for label and mask channels), so rotated or shrunk
patches show real anatomy at their corners, not padding. Outside the volume, images repeat their edge voxel (air
stays air) and labels are background. Then gamma (nnU-Net's: the channel rescaled to [0, 1] over the patch, raised
to γ, scaled back) on image channels only. With no spatial transform drawn the patch is a plain crop (exact values,
fast).

Axis order (z, y, x); ``x`` is the patient's left-right axis (the only mirror: up-down and front-back are not
symmetric in a whole-body scan). Probabilities and ranges follow nnU-Net's 3D defaults (Isensee et al. 2021):
rotation ±30° with p 0.2, scaling 0.7–1.4 with p 0.2, gamma 0.7–1.5 with p 0.3; elastic deformation (the
seed study's) with p 0.2, displacement field of Gaussian-smoothed noise (σ in voxels, amplitude ``alpha`` voxels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class VolumeAugmentation:
    """Probabilities and ranges of the 3D augmentations (see the module docstring)."""

    rotation_probability: float = 0.2
    max_rotation_deg: float = 30.0
    scale_probability: float = 0.2
    scale_range: tuple[float, float] = (0.7, 1.4)
    elastic_probability: float = 0.2
    elastic_alpha_voxels: float = 2.0
    elastic_sigma_voxels: float = 4.0
    mirror_probability: float = 0.5
    gamma_probability: float = 0.3
    gamma_range: tuple[float, float] = (0.7, 1.5)
    in_plane_rotation: bool = False  # rotate in the (y, x) plane only (thick-slice MRI: z is not isotropic)


NO_AUGMENTATION = VolumeAugmentation(0.0, 0.0, 0.0, (1.0, 1.0), 0.0, 0.0, 1.0, 0.0, 0.0, (1.0, 1.0))


def rotation_matrix(angles_rad: Sequence[float]) -> np.ndarray:
    """Rotation about the z, then y, then x axis (voxel axes ``(z, y, x)``), as a 3 × 3 matrix."""
    az, ay, ax = angles_rad
    rz = np.array([[1, 0, 0], [0, np.cos(az), -np.sin(az)], [0, np.sin(az), np.cos(az)]])  # in the (y, x) plane
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])  # in the (z, x) plane
    rx = np.array([[np.cos(ax), -np.sin(ax), 0], [np.sin(ax), np.cos(ax), 0], [0, 0, 1]])  # in the (z, y) plane
    return rx @ ry @ rz


def _crop(volume: np.ndarray, start: np.ndarray, shape: tuple[int, ...], fill: float | None) -> np.ndarray:
    """``volume[start : start + shape]`` with edge repetition (``fill`` None) or ``fill`` outside."""
    index = [np.arange(s, s + n) for s, n in zip(start, shape, strict=True)]
    clipped = [np.clip(i, 0, d - 1) for i, d in zip(index, volume.shape, strict=True)]
    out = volume[np.ix_(*clipped)]
    if fill is not None:
        inside = np.ones(shape, bool)
        for axis, (i, d) in enumerate(zip(index, volume.shape, strict=True)):
            bad = (i < 0) | (i >= d)
            if bad.any():
                sl: list[slice | np.ndarray] = [slice(None)] * 3
                sl[axis] = bad
                inside[tuple(sl)] = False
        out = np.where(inside, out, fill)
    return out


def sample_volume_patch(
    channels: np.ndarray,
    label: np.ndarray,
    centre: Sequence[int],
    shape: Sequence[int],
    aug: VolumeAugmentation,
    rng: np.random.Generator,
    mask_channels: Sequence[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """One patch ``x (C, *shape)`` float32 and ``y (*shape)`` int64 centred on voxel ``centre`` of ``channels
    (C, z, y, x)`` / ``label (z, y, x)``; ``mask_channels`` are interpolated nearest and left out of gamma."""
    shape = tuple(int(s) for s in shape)
    half = np.asarray(shape) // 2  # the patch voxel at n // 2 samples the centre: no transform = the plain crop
    matrix = np.eye(3)
    if rng.random() < aug.rotation_probability:
        angles = np.deg2rad(rng.uniform(-aug.max_rotation_deg, aug.max_rotation_deg, size=3))
        if aug.in_plane_rotation:
            angles[1:] = 0.0
        matrix = rotation_matrix(angles.tolist()) @ matrix
    if rng.random() < aug.scale_probability:
        matrix = matrix / rng.uniform(*aug.scale_range)  # scale > 1 samples a smaller region: zoom in
    mirror = rng.random() < aug.mirror_probability
    displacement = None
    if rng.random() < aug.elastic_probability:
        displacement = np.stack(
            [
                ndimage.gaussian_filter(rng.uniform(-1.0, 1.0, shape), aug.elastic_sigma_voxels, mode="constant")
                for _ in range(3)
            ]
        )
        peak = np.abs(displacement).max()
        displacement *= aug.elastic_alpha_voxels / peak if peak > 0 else 0.0
    if displacement is None and np.allclose(matrix, np.eye(3)):
        start = np.asarray(centre, int) - np.asarray(shape) // 2
        x = np.stack([_crop(c, start, shape, None) for c in channels]).astype(np.float32)
        y = _crop(label, start, shape, 0).astype(np.int64)
    else:
        offsets = np.stack(np.meshgrid(*[np.arange(n) - h for n, h in zip(shape, half, strict=True)], indexing="ij"))
        if displacement is not None:
            offsets = offsets + displacement
        coords = np.tensordot(matrix, offsets, axes=1) + np.asarray(centre, float).reshape(3, 1, 1, 1)
        x = np.stack(
            [
                ndimage.map_coordinates(c, coords, order=0 if i in mask_channels else 1, mode="nearest")
                for i, c in enumerate(channels)
            ]
        ).astype(np.float32)
        y = ndimage.map_coordinates(label, coords, order=0, mode="constant", cval=0).astype(np.int64)
    if mirror:
        x, y = x[..., ::-1], y[..., ::-1]
    if rng.random() < aug.gamma_probability:
        gamma = float(rng.uniform(*aug.gamma_range))
        for i in range(len(x)):
            if i in mask_channels:
                continue
            lo, hi = float(x[i].min()), float(x[i].max())
            if hi > lo:
                x[i] = ((x[i] - lo) / (hi - lo)) ** gamma * (hi - lo) + lo
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y)
