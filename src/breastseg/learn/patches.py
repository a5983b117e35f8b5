"""Random training patches with a tunable tumour-centre bias, and augmentations per modality.

2D images ``(C, H, W)`` and 3D volumes ``(C, z, y, x)`` alike; a 3D volume's patch (``size`` an int for a cube or
a ``(z, y, x)`` tuple) is sampled with :func:`breastseg.learn.volume_patches.sample_volume_patch` and
``PatchConfig.volume``'s augmentations, whatever ``augmentation`` says (that choice is for 2D images).

Each epoch draws ``per_image`` patches from every training image; with probability ``positive_bias`` a patch is
centred on a random malignant pixel, otherwise — with probability ``focus_bias`` — on a random voxel of the image's
*focus* (hard negatives: where a registered baseline lesion was, or bright enhancing tissue), otherwise on a
random tissue pixel (``centring="image"``: on the image's
centre, so a patch of the image's size is the whole image). Augmentations, each with probability ``p``:

* ``specimen`` (the specimen study's): rotation by a multiple of 90° plus a small random angle, flips, Gaussian
  noise, Gaussian smoothing and a contrast (gamma) change — a lamella has no preferred orientation.
* ``ultrasound``: horizontal flip only (the vertical axis is depth below the probe), an affine (rotation, scale,
  a stretch of one axis against the other — images of other widths squeezed to the square input — and shift)
  and intensity changes (gamma, contrast and brightness). Optionally (each off at its default, ``PatchConfig``'s
  ``us_*`` fields, nnU-Net's image-quality augmentations adapted to ultrasound): Gaussian blur, simulated low
  resolution (down-sampled and back), and speckle-like multiplicative noise (Gaussian noise smoothed over a pixel,
  times the image, so dark fluid stays dark).

Labels follow the geometric transforms with nearest-neighbour interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import ndimage

from breastseg.learn.volume_patches import NO_AUGMENTATION, VolumeAugmentation, sample_volume_patch


@dataclass(frozen=True)
class PatchConfig:
    """Patch sampling and augmentation (the study tuned size, patches per image and the positive bias)."""

    size: int | tuple[int, ...] = 96
    per_image: int = 8
    positive_bias: float = 0.5
    augment_probability: float = 0.5
    max_rotation_deg: float = 15.0
    noise_sd: float = 0.05
    smooth_sigma_px: tuple[float, float] = (0.5, 1.5)
    gamma_range: tuple[float, float] = (0.7, 1.5)
    augmentation: Literal["specimen", "ultrasound"] = "specimen"
    centring: Literal["label", "image"] = "label"
    max_scale: float = 0.1  # ultrasound affine: scale in [1 − s, 1 + s]
    max_shift: float = 0.05  # ultrasound affine: shift up to this fraction of the patch size
    contrast_range: tuple[float, float] = (0.85, 1.15)
    brightness_shift: float = 0.1
    us_max_stretch: float = 0.0  # ultrasound affine: one axis scaled by a further factor in [1 − s, 1 + s]
    us_blur_sigma_px: tuple[float, float] = (0.0, 0.0)  # ultrasound: Gaussian blur σ range (0: off)
    us_low_resolution: float = 1.0  # ultrasound: down-sampled to a factor in [this, 1] and back (1: off)
    us_speckle_sd: float = 0.0  # ultrasound: SD of the multiplicative noise (0: off)
    volume: VolumeAugmentation = field(default_factory=VolumeAugmentation)
    focus_bias: float = 0.0  # of the patches not centred on the label, this fraction is centred on a focus voxel
    mask_channels: tuple[int, ...] = ()  # 3D: input channels that are masks (nearest interpolation, no gamma)

    def shape(self, ndim: int) -> tuple[int, ...]:
        """The patch shape for images of ``ndim`` spatial dimensions (an int ``size`` is a square or cube)."""
        if isinstance(self.size, int):
            return (self.size,) * ndim
        if len(self.size) != ndim:
            raise ValueError(f"patch size {self.size} does not fit {ndim}D images")
        return tuple(int(s) for s in self.size)


def _centre(
    label: np.ndarray,
    tissue: np.ndarray,
    bias: float,
    rng: np.random.Generator,
    focus: np.ndarray | None = None,
    focus_bias: float = 0.0,
) -> np.ndarray:
    malignant = np.argwhere(label == 1)
    if malignant.size and rng.random() < bias:
        return malignant[rng.integers(len(malignant))]
    if focus is not None and focus_bias > 0 and rng.random() < focus_bias:
        hard = np.argwhere(focus)
        if hard.size:
            return hard[rng.integers(len(hard))]
    pool = np.argwhere(tissue)
    if pool.size == 0:
        pool = np.argwhere(np.ones_like(tissue))
    return pool[rng.integers(len(pool))]


def extract_patch(
    channels: np.ndarray, label: np.ndarray, centre: np.ndarray, size: int, unknown_label: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Square 2D patch around ``centre``; outside the image channels are 0 and labels are benign."""
    half = size // 2
    h, w = label.shape
    top, left = int(centre[0]) - half, int(centre[1]) - half
    x = np.zeros((channels.shape[0], size, size), np.float32)
    y = np.zeros((size, size), np.int64)
    ys, ye = max(0, top), min(h, top + size)
    xs, xe = max(0, left), min(w, left + size)
    x[:, ys - top : ye - top, xs - left : xe - left] = channels[:, ys:ye, xs:xe]
    y[ys - top : ye - top, xs - left : xe - left] = label[ys:ye, xs:xe]
    return x, y


def augment(x: np.ndarray, y: np.ndarray, cfg: PatchConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply the configured augmentations to one patch ``x (C, s, s)``, ``y (s, s)``."""
    if cfg.augmentation == "ultrasound":
        return augment_ultrasound(x, y, cfg, rng)
    p = cfg.augment_probability
    if rng.random() < p:
        k = int(rng.integers(4))
        x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
        angle = float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
        x = ndimage.rotate(x, angle, axes=(1, 2), reshape=False, order=1, mode="constant", cval=0.0)
        y = ndimage.rotate(y, angle, axes=(0, 1), reshape=False, order=0, mode="constant", cval=0)
    if rng.random() < p:
        x, y = x[:, :, ::-1], y[:, ::-1]
    if rng.random() < p:
        x, y = x[:, ::-1, :], y[::-1, :]
    if rng.random() < p:
        x = x + rng.normal(0.0, cfg.noise_sd, size=x.shape).astype(np.float32)
    if rng.random() < p:
        sigma = float(rng.uniform(*cfg.smooth_sigma_px))
        x = np.stack([ndimage.gaussian_filter(c, sigma) for c in x])
    if rng.random() < p:
        gamma = float(rng.uniform(*cfg.gamma_range))
        x = np.clip(x, 0.0, 1.0) ** gamma
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


def augment_ultrasound(
    x: np.ndarray, y: np.ndarray, cfg: PatchConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Ultrasound augmentations (see the module docstring) of ``x (C, s, s)`` in [0, 1], ``y (s, s)``."""
    p = cfg.augment_probability
    if rng.random() < p:
        x, y = x[:, :, ::-1], y[:, ::-1]
    if rng.random() < p:
        angle = np.deg2rad(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
        scale = rng.uniform(1.0 - cfg.max_scale, 1.0 + cfg.max_scale)
        stretch = np.ones(2)
        stretch[int(rng.integers(2))] = rng.uniform(1.0 - cfg.us_max_stretch, 1.0 + cfg.us_max_stretch)
        shift = rng.uniform(-cfg.max_shift, cfg.max_shift, size=2) * np.array(y.shape)
        # output pixel o samples input at matrix @ (o − centre) + centre − shift: rotate and zoom about the centre
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        matrix = rotation @ np.diag(1.0 / stretch) / scale
        centre = (np.array(y.shape) - 1) / 2.0
        offset = centre - matrix @ centre - shift
        x = np.stack([ndimage.affine_transform(c, matrix, offset, order=1, mode="constant", cval=0.0) for c in x])
        y = ndimage.affine_transform(y, matrix, offset, order=0, mode="constant", cval=0)
    if rng.random() < p:
        gamma = float(rng.uniform(*cfg.gamma_range))
        x = np.clip(x, 0.0, 1.0) ** gamma
    if rng.random() < p:
        contrast = float(rng.uniform(*cfg.contrast_range))
        brightness = float(rng.uniform(-cfg.brightness_shift, cfg.brightness_shift))
        x = np.clip((x - 0.5) * contrast + 0.5 + brightness, 0.0, 1.0)
    return _degrade_ultrasound(np.asarray(x, np.float32), cfg, rng), np.ascontiguousarray(y)


def _degrade_ultrasound(x: np.ndarray, cfg: PatchConfig, rng: np.random.Generator) -> np.ndarray:
    """The optional image-quality augmentations of ``ultrasound`` (module docstring), each with probability
    ``augment_probability / 2`` (nnU-Net draws its blur and low-resolution with 0.2 and 0.25)."""
    p = cfg.augment_probability / 2.0
    if cfg.us_blur_sigma_px[1] > 0 and rng.random() < p:
        sigma = float(rng.uniform(*cfg.us_blur_sigma_px))
        x = np.stack([ndimage.gaussian_filter(c, sigma) for c in x])
    if cfg.us_low_resolution < 1.0 and rng.random() < p:
        factor = float(rng.uniform(cfg.us_low_resolution, 1.0))
        shape = x.shape[1:]
        small = [max(2, round(n * factor)) for n in shape]
        x = np.stack(
            [
                ndimage.zoom(
                    ndimage.zoom(c, [a / b for a, b in zip(small, shape, strict=True)], order=0),
                    [a / b for a, b in zip(shape, small, strict=True)],
                    order=3,
                    grid_mode=True,
                    mode="grid-constant",
                )[: shape[0], : shape[1]]
                for c in x
            ]
        )
    if cfg.us_speckle_sd > 0 and rng.random() < p:
        noise = ndimage.gaussian_filter(rng.normal(0.0, 1.0, x.shape[1:]), 1.0)
        noise *= cfg.us_speckle_sd / max(float(noise.std()), 1e-6)
        x = x * (1.0 + noise[None])
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=np.float32)


def sample_epoch(
    images: list[np.ndarray],
    labels: list[np.ndarray],
    tissues: list[np.ndarray],
    cfg: PatchConfig,
    rng: np.random.Generator,
    train: bool = True,
    focuses: list[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of patches from every image: ``x (N, C, *patch)``, ``y (N, *patch)``, shuffled."""
    xs, ys = [], []
    focus_of = focuses if focuses is not None else [None] * len(images)
    for img, lab, tissue, focus in zip(images, labels, tissues, focus_of, strict=True):
        for _ in range(cfg.per_image):
            if cfg.centring == "image":
                centre = np.array(lab.shape) // 2
            else:
                centre = _centre(lab, tissue, cfg.positive_bias, rng, focus, cfg.focus_bias)
            if lab.ndim == 3:
                aug = cfg.volume if train else NO_AUGMENTATION
                x, y = sample_volume_patch(img, lab, centre.tolist(), cfg.shape(3), aug, rng, cfg.mask_channels)
                xs.append(x)
                ys.append(y)
                continue
            x, y = extract_patch(img, lab, centre, cfg.shape(2)[0])
            if train:
                x, y = augment(x, y, cfg, rng)
            xs.append(x)
            ys.append(y)
    order = rng.permutation(len(xs))
    return np.stack(xs)[order], np.stack(ys)[order]
