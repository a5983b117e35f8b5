"""Tiny synthetic ultrasound datasets on disk, in each supported layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage


def speckle_scene(seed: int, shape: tuple[int, int] = (120, 160), lesion: tuple[int, int, int] | None = None):
    """A smooth random 'tissue' texture with multiplicative speckle and, optionally, a dark round lesion
    ``(cy, cx, radius)``; returns the uint8 image and the lesion mask."""
    rng = np.random.default_rng(seed)
    tissue = ndimage.gaussian_filter(rng.normal(size=shape), 6.0)
    tissue = (tissue - tissue.min()) / (np.ptp(tissue) + 1e-9)
    image = 60.0 + 140.0 * tissue
    mask = np.zeros(shape, bool)
    if lesion is not None:
        cy, cx, r = lesion
        y, x = np.ogrid[: shape[0], : shape[1]]
        mask = (y - cy) ** 2 + (x - cx) ** 2 <= r**2
        image[mask] *= 0.35
    image *= rng.gamma(8.0, 1.0 / 8.0, size=shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write a PNG: bool → 1-bit mask (as BUSI's), uint8 2D → grayscale, uint8 (y, x, 3) → RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == bool:
        PILImage.fromarray(array.astype(np.uint8) * 255).convert("1").save(path)
    else:
        PILImage.fromarray(array).save(path)
    return path


def write_busi_like(root: Path, counts: dict[str, int], seed: int, first_scene: int) -> Path:
    """A small BUSI-layout dataset of 80 × 100 px speckle scenes: ``counts`` images per class (``normal`` without
    a lesion, the others with one dark disc of radius 10–17 px), deterministic by ``seed``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        for i in range(n):
            r = int(rng.integers(10, 18))
            lesion = None if cls == "normal" else (int(rng.integers(25, 55)), int(rng.integers(25, 75)), r)
            image, mask = speckle_scene(first_scene + 10 * i + len(cls), shape=(80, 100), lesion=lesion)
            save_png(image, root / cls / f"{cls} ({i}).png")
            save_png(mask, root / cls / f"{cls} ({i})_mask.png")
    return root
