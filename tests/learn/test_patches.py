"""Augmentations per modality: ultrasound never flips depth, moves image and label together, and changes
intensities only monotonically (the speckle pattern's order is kept)."""

from __future__ import annotations

import numpy as np

from breastseg.learn.patches import PatchConfig, augment

STILL = {"max_rotation_deg": 0.0, "max_scale": 0.0, "max_shift": 0.0, "gamma_range": (1.0, 1.0)}


def _scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((1, 48, 64)).astype(np.float32) * 0.5
    y = np.zeros((48, 64), np.int64)
    y[10:25, 5:30] = 1  # off-centre, asymmetric
    return x, y


def test_ultrasound_flips_left_right_but_never_depth() -> None:
    x, y = _scene()
    cfg = PatchConfig(
        augmentation="ultrasound", augment_probability=1.0, contrast_range=(1, 1), brightness_shift=0.0, **STILL
    )
    rng = np.random.default_rng(1)
    for _ in range(5):
        xa, ya = augment(x, y, cfg, rng)
        np.testing.assert_allclose(xa, x[:, :, ::-1], atol=1e-6)
        np.testing.assert_array_equal(ya, y[:, ::-1])


def test_ultrasound_affine_moves_image_and_label_together() -> None:
    _, y = _scene()
    x = y[None].astype(np.float32)  # the image is the label: after the same warp they must still agree
    cfg = PatchConfig(
        augmentation="ultrasound",
        augment_probability=1.0,
        max_rotation_deg=10.0,
        max_scale=0.1,
        max_shift=0.05,
        gamma_range=(1, 1),
        contrast_range=(1, 1),
        brightness_shift=0.0,
    )
    rng = np.random.default_rng(2)
    moved = 0
    for _ in range(10):
        xa, ya = augment(x, y, cfg, rng)
        agree = np.mean((xa[0] >= 0.5) == (ya == 1))
        assert agree > 0.99
        moved += int(not np.array_equal(ya, y) and not np.array_equal(ya, y[:, ::-1]))
    assert moved >= 9  # the warp really warps


def test_ultrasound_intensity_changes_keep_the_order_of_pixels() -> None:
    x, y = _scene()
    cfg = PatchConfig(augmentation="ultrasound", augment_probability=1.0, **{**STILL, "gamma_range": (0.7, 1.5)})
    rng = np.random.default_rng(3)
    order = np.argsort(x[0].ravel(), kind="stable")
    for _ in range(10):
        xa, ya = augment(x, y, cfg, rng)
        flat = xa[0][:, ::-1].ravel()  # undo the flip, which p = 1 always applies
        assert np.all(np.diff(flat[order]) >= -1e-6)  # monotone: no added noise, no blur
        assert not np.allclose(flat, x[0].ravel())
        np.testing.assert_array_equal(ya, y[:, ::-1])


def test_specimen_augmentation_is_unchanged_by_default() -> None:
    assert PatchConfig().augmentation == "specimen" and PatchConfig().centring == "label"


def test_ultrasound_stretch_moves_image_and_label_together() -> None:
    _, y = _scene()
    x = y[None].astype(np.float32)
    cfg = PatchConfig(
        augmentation="ultrasound",
        augment_probability=1.0,
        contrast_range=(1, 1),
        brightness_shift=0.0,
        us_max_stretch=0.3,
        **STILL,
    )
    rng = np.random.default_rng(4)
    areas = set()
    for _ in range(10):
        xa, ya = augment(x, y, cfg, rng)
        assert np.mean((xa[0] >= 0.5) == (ya == 1)) > 0.99
        areas.add(int(ya.sum()))
    assert len(areas) > 5  # one axis scaled alone changes the lesion's area (a rotation or flip would not)


def test_ultrasound_image_quality_augmentations_blur_degrade_and_multiply() -> None:
    x, y = _scene()
    x[0, :, :8] = 0.0  # a black band: multiplicative speckle keeps it black
    quiet = {**STILL, "contrast_range": (1.0, 1.0), "brightness_shift": 0.0}
    rng = np.random.default_rng(5)

    def once(**extra: object) -> np.ndarray:
        # p = 2 makes each image-quality change (drawn with p / 2) certain
        cfg = PatchConfig(augmentation="ultrasound", augment_probability=2.0, **{**quiet, **extra})  # type: ignore[arg-type]
        xa, ya = augment(x, y, cfg, rng)
        np.testing.assert_array_equal(ya, y[:, ::-1])  # the label is never touched
        return xa[0][:, ::-1]

    rough = float(np.abs(np.diff(x[0], axis=1)).mean())
    assert float(np.abs(np.diff(once(us_blur_sigma_px=(1.0, 1.0)), axis=1)).mean()) < 0.6 * rough
    low = once(us_low_resolution=0.5)
    assert low.shape == x[0].shape and not np.allclose(low, x[0], atol=0.05)
    noisy = once(us_speckle_sd=0.2)
    assert np.all(noisy[:, :8] == 0.0)
    ratio = noisy[:, 10:] / x[0][:, 10:]
    assert 0.1 < float(ratio.std()) < 0.3 and abs(float(ratio.mean()) - 1.0) < 0.05
    np.testing.assert_allclose(once(), x[0], atol=1e-6)  # all off by default: only the flip
