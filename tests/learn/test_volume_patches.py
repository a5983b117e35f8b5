"""3D patch sampling: plain crops are exact, and each augmentation moves an analytic ramp as its geometry says."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.learn.patches import PatchConfig, sample_epoch
from breastseg.learn.volume_patches import NO_AUGMENTATION, VolumeAugmentation, rotation_matrix, sample_volume_patch

SHAPE = (20, 24, 28)


def _ramps() -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in SHAPE], indexing="ij")
    return np.stack([z, y, x])  # channel k holds the k-th voxel coordinate


def _only(**kwargs: object) -> VolumeAugmentation:
    """One augmentation always on, all others off."""
    base = {
        "rotation_probability": 0.0,
        "scale_probability": 0.0,
        "elastic_probability": 0.0,
        "mirror_probability": 0.0,
        "gamma_probability": 0.0,
    }
    return VolumeAugmentation(**{**base, **kwargs})  # type: ignore[arg-type]


def test_plain_crop_is_exact_and_repeats_the_edge_outside() -> None:
    ramps = _ramps()
    label = np.zeros(SHAPE, np.int64)
    label[2:5, 3:6, 4:7] = 1
    x, y = sample_volume_patch(ramps, label, (3, 4, 5), (8, 8, 8), NO_AUGMENTATION, np.random.default_rng(0))
    # patch starts at centre − 4 = (−1, 0, 1): z index −1 repeats row 0
    np.testing.assert_array_equal(x[0][:, 0, 0], [0, 0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(x[2][0, 0], np.arange(1, 9))
    assert y.sum() == label[0:7, 0:8, 1:9].sum() == 27
    # outside the volume the label is background, not the repeated edge
    edge_label = np.zeros(SHAPE, np.int64)
    edge_label[0] = 1
    _, y2 = sample_volume_patch(ramps, edge_label, (0, 10, 10), (4, 4, 4), NO_AUGMENTATION, np.random.default_rng(0))
    np.testing.assert_array_equal(y2[:, 0, 0], [0, 0, 1, 0])


def test_rotation_matrix_turns_y_into_x_for_90_degrees_about_z() -> None:
    matrix = rotation_matrix(np.deg2rad([90.0, 0.0, 0.0]))
    np.testing.assert_allclose(matrix @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)  # y offset → x position
    np.testing.assert_allclose(matrix @ [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], atol=1e-12)  # z untouched
    any_matrix = rotation_matrix(np.deg2rad([20.0, -35.0, 50.0]))
    np.testing.assert_allclose(any_matrix @ any_matrix.T, np.eye(3), atol=1e-12)


def test_rotated_patch_is_a_rigid_motion_about_the_centre() -> None:
    aug = _only(rotation_probability=1.0, max_rotation_deg=30.0)
    centre = (10, 12, 14)
    x, _ = sample_volume_patch(_ramps(), np.zeros(SHAPE, np.int64), centre, (6, 6, 6), aug, np.random.default_rng(1))
    np.testing.assert_allclose(x[:, 3, 3, 3], centre, atol=1e-5)  # the centre voxel samples the centre
    pts = x.reshape(3, -1).T  # sampled positions (the ramps hold coordinates); all inside the volume here
    grid = np.stack(np.meshgrid(*[np.arange(6.0)] * 3, indexing="ij")).reshape(3, -1).T
    d_sampled = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    d_grid = np.linalg.norm(grid[:, None] - grid[None], axis=-1)
    np.testing.assert_allclose(d_sampled, d_grid, atol=1e-3)
    assert not np.allclose(pts, grid + np.array(centre) - 3)  # and it did rotate


def test_in_plane_rotation_never_tilts_the_slices() -> None:
    ramps, label = _ramps(), np.zeros(SHAPE, np.int64)
    aug = _only(rotation_probability=1.0, max_rotation_deg=30.0, in_plane_rotation=True)
    tilted = _only(rotation_probability=1.0, max_rotation_deg=30.0)
    for seed in range(5):
        x, _ = sample_volume_patch(ramps, label, (10, 12, 14), (6, 6, 6), aug, np.random.default_rng(seed))
        np.testing.assert_allclose(x[0], np.arange(7, 13)[:, None, None] * np.ones((6, 6, 6)), atol=1e-5)  # z kept
        assert not np.allclose(x[1], np.arange(9, 15)[None, :, None] * np.ones((6, 6, 6)), atol=1e-3)  # y turned
    x3, _ = sample_volume_patch(ramps, label, (10, 12, 14), (6, 6, 6), tilted, np.random.default_rng(0))
    assert np.ptp(x3[0][3]) > 0.5  # a full 3D rotation does tilt a slice across z


def test_scaling_stretches_the_ramp_slope_by_one_over_the_scale() -> None:
    aug = _only(scale_probability=1.0, scale_range=(2.0, 2.0))
    x, _ = sample_volume_patch(
        _ramps(), np.zeros(SHAPE, np.int64), (10, 12, 14), (8, 8, 8), aug, np.random.default_rng(0)
    )
    np.testing.assert_allclose(np.diff(x[2][4, 4]), 0.5, atol=1e-5)  # zoomed in 2x: half a voxel per patch voxel
    assert x[2][4, 4, 4] == pytest.approx(14.0)  # about the centre


def test_elastic_displacement_is_bounded_by_alpha_and_not_zero() -> None:
    aug = _only(elastic_probability=1.0, elastic_alpha_voxels=1.5, elastic_sigma_voxels=3.0)
    ramps = _ramps()
    centre = (10, 12, 14)
    x, _ = sample_volume_patch(ramps, np.zeros(SHAPE, np.int64), centre, (8, 8, 8), aug, np.random.default_rng(3))
    plain, _ = sample_volume_patch(
        ramps, np.zeros(SHAPE, np.int64), centre, (8, 8, 8), NO_AUGMENTATION, np.random.default_rng(3)
    )
    shift = np.abs(x - plain)  # per-axis displacement of each sampled position
    assert shift.max() <= 1.5 + 1e-4 and shift.max() > 0.5


def test_mirror_flips_left_right_only() -> None:
    aug = _only(mirror_probability=1.0)
    x, _ = sample_volume_patch(
        _ramps(), np.zeros(SHAPE, np.int64), (10, 12, 14), (4, 4, 4), aug, np.random.default_rng(0)
    )
    np.testing.assert_array_equal(x[2][0, 0], [15, 14, 13, 12])
    np.testing.assert_array_equal(x[1][0, :, 0], [10, 11, 12, 13])


def test_masks_stay_binary_and_are_left_out_of_gamma() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 5, SHAPE).astype(np.float32)
    mask = np.zeros(SHAPE, np.float32)
    mask[5:15, 6:18, 7:21] = 1
    label = mask.astype(np.int64)
    aug = _only(rotation_probability=1.0, scale_probability=1.0, gamma_probability=1.0, gamma_range=(2.0, 2.0))
    x, y = sample_volume_patch(np.stack([image, mask]), label, (10, 12, 14), (8, 8, 8), aug, rng, mask_channels=(1,))
    assert set(np.unique(x[1])) <= {0.0, 1.0} and set(np.unique(y)) <= {0, 1}
    lo, hi = x[0].min(), x[0].max()
    assert 0 <= lo < hi <= 5  # gamma keeps the channel's own range
    plain, _ = sample_volume_patch(np.stack([image, mask]), label, (10, 12, 14), (8, 8, 8), NO_AUGMENTATION, rng)
    assert x[0].mean() < plain[0].mean()  # γ = 2 pulls values towards the minimum


def test_epoch_of_3d_patches_centres_on_lesions_when_asked() -> None:
    label = np.zeros(SHAPE, np.int64)
    label[10, 12, 14] = 1
    cfg = PatchConfig(size=(4, 6, 8), per_image=5, positive_bias=1.0, volume=NO_AUGMENTATION)
    x, y = sample_epoch([_ramps()], [label], [np.ones(SHAPE, bool)], cfg, np.random.default_rng(0))
    assert x.shape == (5, 3, 4, 6, 8) and y.shape == (5, 4, 6, 8)
    assert np.all(y[:, 2, 3, 4] == 1)  # the lesion voxel at every patch's centre
    with pytest.raises(ValueError, match="does not fit"):
        PatchConfig(size=(4, 6)).shape(3)


def test_hard_negative_patches_centre_on_the_focus() -> None:
    label = np.zeros(SHAPE, np.int64)
    focus = np.zeros(SHAPE, bool)
    focus[3, 4, 5] = True
    cfg = PatchConfig(size=(4, 4, 4), per_image=6, positive_bias=0.0, focus_bias=1.0, volume=NO_AUGMENTATION)
    x, _ = sample_epoch([_ramps()], [label], [np.ones(SHAPE, bool)], cfg, np.random.default_rng(0), focuses=[focus])
    np.testing.assert_array_equal(x[:, :, 2, 2, 2], np.tile([3, 4, 5], (6, 1)))  # every patch centred there
    without = PatchConfig(size=(4, 4, 4), per_image=50, positive_bias=0.0, volume=NO_AUGMENTATION)
    x, _ = sample_epoch([_ramps()], [label], [np.ones(SHAPE, bool)], without, np.random.default_rng(0), focuses=[focus])
    assert (x[:, :, 2, 2, 2] == [3, 4, 5]).all(axis=1).sum() <= 1  # focus_bias 0: uniform over the tissue
