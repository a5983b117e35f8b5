"""Sliding-window inference: stitching, padding of small volumes and the mirror, against direct computation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from breastseg.predict.sliding import predict_sliding


class Pointwise(nn.Module):
    """Logits (0, x): the tumour probability is sigmoid(x) voxel by voxel, whatever window it is computed in."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x[:, :1]), self.scale * x[:, :1]], dim=1)


class ShiftX(nn.Module):
    """Logits (0, x at the voxel to the left): not mirror-symmetric (zero beyond the window's edge)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifted = torch.nn.functional.pad(x[:, :1, ..., :-1], (1, 0))
        return torch.cat([torch.zeros_like(shifted), self.scale * shifted], dim=1)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def test_overlapping_windows_stitch_to_the_voxelwise_answer() -> None:
    rng = np.random.default_rng(0)
    channels = rng.normal(size=(2, 23, 30, 17)).astype(np.float32)
    prob = predict_sliding([Pointwise()], channels, (8, 8, 8), overlap=0.5)
    np.testing.assert_allclose(prob, _sigmoid(channels[0]), atol=1e-5)  # Gaussian weights normalise out


def test_volume_smaller_than_the_window_is_padded_and_cropped_back() -> None:
    channels = np.random.default_rng(1).normal(size=(1, 5, 12, 3)).astype(np.float32)
    prob = predict_sliding([Pointwise()], channels, (8, 8, 8))
    assert prob.shape == (5, 12, 3)
    np.testing.assert_allclose(prob, _sigmoid(channels[0]), atol=1e-5)


def test_mirror_averages_the_flipped_prediction_flipped_back() -> None:
    channels = np.random.default_rng(2).normal(size=(1, 4, 4, 6)).astype(np.float32)
    prob = predict_sliding([ShiftX()], channels, (4, 4, 6), mirror=True)  # one window: no blending
    v = channels[0]
    right = np.concatenate([np.zeros_like(v[..., :1]), v[..., :-1]], axis=-1)  # the net reads the left neighbour
    left = np.concatenate([v[..., 1:], np.zeros_like(v[..., :1])], axis=-1)  # mirrored: the right neighbour
    np.testing.assert_allclose(prob, 0.5 * (_sigmoid(right) + _sigmoid(left)), atol=1e-5)


def test_ensemble_is_the_mean_of_its_members() -> None:
    channels = np.random.default_rng(3).normal(size=(1, 6, 6, 6)).astype(np.float32)
    a, b = Pointwise(), Pointwise()
    with torch.no_grad():
        b.scale.fill_(3.0)
    prob = predict_sliding([a, b], channels, (6, 6, 6))
    np.testing.assert_allclose(prob, 0.5 * (_sigmoid(channels[0]) + _sigmoid(3 * channels[0])), atol=1e-5)
