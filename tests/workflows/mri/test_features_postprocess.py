"""DCE features against an analytic enhancement curve; post-processing keeps exactly the max-containing region."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from breastseg.errors import InputError
from breastseg.workflows.mri.features import dce_features, washout_slope_per_min
from breastseg.workflows.mri.postprocess import keep_max_components, postprocess


def test_linear_washout_slope_is_exact() -> None:
    # voxel k: S(t) = 1.8 − 0.05·k·(t / min) after the first phase; pre-contrast 1.0
    times = [60.0, 150.0, 270.0, 400.0]
    k = np.arange(5, dtype=np.float64).reshape(5, 1, 1)
    post = [np.broadcast_to(1.8 - 0.05 * k * t / 60.0, (5, 2, 3)) for t in times]
    feats = dce_features(np.ones((5, 2, 3)), post, times)
    np.testing.assert_allclose(feats.dce_out_per_min[:, 0, 0], -0.05 * np.arange(5), atol=1e-6)
    np.testing.assert_allclose(feats.dce_in[:, 0, 0], 0.8 - 0.05 * np.arange(5), atol=1e-6)
    assert feats.stack().shape == (3, 5, 2, 3)


def test_slope_of_noisy_curve_equals_scipys_linregress() -> None:
    rng = np.random.default_rng(0)
    times = np.array([70.0, 130.0, 250.0, 310.0, 500.0])
    values = rng.normal(size=(5, 4))
    slope = washout_slope_per_min(list(values.reshape(5, 4, 1, 1)), times)
    for j in range(4):
        assert slope[j, 0, 0] == pytest.approx(stats.linregress(times / 60.0, values[:, j]).slope, rel=1e-5)


def test_one_post_contrast_phase_has_zero_slope_and_bad_input_is_named() -> None:
    assert not washout_slope_per_min([np.ones((2, 2))], [60.0]).any()
    with pytest.raises(InputError, match="acquisition order"):
        dce_features(np.ones((2, 2)), [np.ones((2, 2))] * 2, [120.0, 60.0])
    with pytest.raises(InputError, match="share one grid"):
        dce_features(np.ones((2, 2)), [np.ones((2, 3))], [60.0])
    with pytest.raises(InputError, match="must differ"):
        washout_slope_per_min([np.ones(2)] * 2, [60.0, 60.0])


def test_only_the_component_holding_the_maximum_survives() -> None:
    p = np.zeros((1, 12, 12))
    p[0, 1:4, 1:4] = 0.9  # holds the maximum
    p[0, 2, 2] = 1.0
    p[0, 8:11, 8:11] = 0.8  # above 0.6 × max but disconnected: dropped
    p[0, 4, 1:4] = 0.5  # touching, below threshold: not part of the region
    mask = keep_max_components(p, 0.6)
    expected = np.zeros_like(mask)
    expected[0, 1:4, 1:4] = True
    np.testing.assert_array_equal(mask, expected)
    # diagonal contact is not a face connection
    p[0, 4, 4] = 0.95
    assert not keep_max_components(p, 0.6)[0, 4, 4]


def test_per_slice_threshold_uses_each_slices_own_maximum() -> None:
    p = np.zeros((3, 6, 6))
    p[0, 1:3, 1:3] = [[0.9, 0.6], [0.5, 0.4]]  # threshold 0.54: keeps 0.9 and 0.6
    p[1, 3:5, 3:5] = 0.3  # maximum 0.3 < 0.5: empty slice
    mask = postprocess(p, 0.6, per_slice=True, axis=0)
    assert mask[0].sum() == 2 and mask[0, 1, 1] and mask[0, 1, 2]
    assert not mask[1].any() and not mask[2].any()
    whole = postprocess(p, 0.6)  # the volume: one threshold at 0.54, the component of 0.9
    assert whole.sum() == 2
