"""Near-duplicate images, so that copies of one lesion never sit on both sides of a train/test split.

Public 2D datasets repeat images: BUSI holds the same lesion with and without calipers, re-saved, slightly
shifted or re-cropped, and once under two classes (Pawłowska et al., Data in Brief 2023). Without patient ids,
the honest split groups such images together. Each image gets a perceptual hash (DCT ``phash`` of ImageHash, on
the grayscale image; robust to re-encoding, small overlays and mild brightness changes) and, as a second
opinion that tolerates small shifts, a difference hash (``dhash``). Two images are linked when their pHashes
differ in at most 12 of 64 bits, or their dHashes in at most 10 while the pHashes still differ in at most 20 (a
close dHash alone links unrelated images with a similar brightness layout). The groups are the connected
components of the links (union-find), so a chain of near-copies stays together. The thresholds were chosen by
looking at BUSI's pairs in distance bands (docs/reference/ultrasound.md): below them nearly every pair is one
lesion, above them nearly every pair is two; they err towards grouping, since a wrong merge only costs fold
balance while a missed duplicate leaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image as PILImage

HASH_SIZE = 8  # 64-bit hashes
PHASH_MAX_DISTANCE = 12  # bits of 64; see the module docstring
DHASH_MAX_DISTANCE = 10
DHASH_PHASH_CAP = 20  # a dHash link also needs the pHashes within this


@dataclass(frozen=True)
class ImageHashes:
    """The two 64-bit hashes of one image, as boolean bit arrays."""

    phash: np.ndarray
    dhash: np.ndarray


def image_hashes(image: np.ndarray, hash_size: int = HASH_SIZE) -> ImageHashes:
    """Perceptual and difference hashes of a 2D image ``(y, x)`` or ``(y, x, channels)`` (any dtype).

    Colour images are reduced to luminance first; intensities are scaled to 0–255 by the image's own range.
    """
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3:
        array = array[..., :3].mean(axis=-1) if array.shape[-1] >= 3 else array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"image_hashes needs a 2D image, got shape {np.shape(image)}")
    lo, hi = float(array.min()), float(array.max())
    scaled = np.zeros(array.shape, np.uint8) if hi <= lo else ((array - lo) / (hi - lo) * 255.0).round()
    pil = PILImage.fromarray(np.asarray(scaled, np.uint8), mode="L")
    return ImageHashes(
        np.asarray(imagehash.phash(pil, hash_size=hash_size).hash, bool).ravel(),
        np.asarray(imagehash.dhash(pil, hash_size=hash_size).hash, bool).ravel(),
    )


def hamming_matrix(bits: np.ndarray) -> np.ndarray:
    """All pairwise Hamming distances of ``bits (n, n_bits)`` (bool) → ``(n, n)`` int."""
    b = np.asarray(bits, np.int32)
    return np.asarray(b.shape[1] - (b @ b.T + (1 - b) @ (1 - b).T), dtype=np.int64)


@dataclass(frozen=True)
class DuplicateLink:
    """Two images judged near-duplicates, with both Hamming distances (bits)."""

    first: int
    second: int
    phash_distance: int
    dhash_distance: int


def _components(n: int, links: Sequence[DuplicateLink]) -> list[int]:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for link in links:
        a, b = find(link.first), find(link.second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = [find(i) for i in range(n)]
    numbering: dict[int, int] = {}
    return [numbering.setdefault(r, len(numbering)) for r in roots]


def duplicate_groups(
    hashes: Sequence[ImageHashes],
    phash_max: int = PHASH_MAX_DISTANCE,
    dhash_max: int = DHASH_MAX_DISTANCE,
) -> tuple[list[int], list[DuplicateLink]]:
    """Group images whose pHashes differ in at most ``phash_max`` bits, or whose dHashes differ in at most
    ``dhash_max`` bits while their pHashes differ in at most :data:`DHASH_PHASH_CAP`.

    Returns a group number per image (0, 1, … in order of first appearance; a unique image is a group of its
    own) and the links that made the groups (each pair once, ``first < second``).
    """
    n = len(hashes)
    if n == 0:
        return [], []
    dp = hamming_matrix(np.stack([h.phash for h in hashes]))
    dd = hamming_matrix(np.stack([h.dhash for h in hashes]))
    close = (dp <= phash_max) | ((dd <= dhash_max) & (dp <= DHASH_PHASH_CAP))
    first, second = np.nonzero(np.triu(close, k=1))
    links = [DuplicateLink(int(i), int(j), int(dp[i, j]), int(dd[i, j])) for i, j in zip(first, second, strict=True)]
    return _components(n, links), links
