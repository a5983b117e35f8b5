"""Near-duplicate grouping: copies that differ by re-encoding, an overlay, a small shift or brightness stay
together; different scenes do not; grouping is transitive; distances match a brute-force count."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from breastseg.learn.duplicates import ImageHashes, duplicate_groups, hamming_matrix, image_hashes
from tests.workflows.ultrasound.conftest import speckle_scene


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    PILImage.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(PILImage.open(buffer))


def test_copies_group_and_different_scenes_do_not() -> None:
    base, _ = speckle_scene(10, shape=(240, 320), lesion=(120, 150, 30))
    caliper = base.copy()
    caliper[100:140, 60] = 255  # a burned-in caliper line and cross
    caliper[120, 40:80] = 255
    shifted = np.roll(base, (3, -4), axis=(0, 1))
    brighter = np.clip(base.astype(np.float32) * 1.15 + 5, 0, 255).astype(np.uint8)
    rgb = np.stack([base] * 3, axis=-1)
    copies = [base, _jpeg(base, 60), caliper, shifted, brighter, rgb]
    others = [speckle_scene(s, shape=(240, 320), lesion=(100 + s, 140, 25))[0] for s in (11, 12, 13)]
    groups, links = duplicate_groups([image_hashes(im) for im in copies + others])
    assert len(set(groups[: len(copies)])) == 1  # every copy with the original
    assert len(set(groups)) == 1 + len(others)  # every other scene alone
    assert all(link.first < link.second for link in links)


def test_grouping_is_transitive() -> None:
    """a ~ b and b ~ c put a and c together even when a and c are far apart (a chain of near-copies)."""
    a = np.zeros(64, bool)
    b = a.copy()
    b[:8] = True
    c = b.copy()
    c[8:16] = True
    far = np.ones(64, bool)
    hashes = [ImageHashes(h, h) for h in (a, b, c, far)]
    groups, links = duplicate_groups(hashes, phash_max=8, dhash_max=8)
    assert groups == [0, 0, 0, 1]
    assert {(lk.first, lk.second, lk.phash_distance) for lk in links} == {(0, 1, 8), (1, 2, 8)}
    assert duplicate_groups([]) == ([], [])


def test_hamming_matrix_matches_a_brute_force_count() -> None:
    bits = np.random.default_rng(0).random((7, 64)) < 0.5
    brute = np.array([[int(np.sum(x != y)) for y in bits] for x in bits])
    np.testing.assert_array_equal(hamming_matrix(bits), brute)
