"""Slice-wise and tri-planar prediction: padding, cropping, axes and skipped slices, with a known 'network'."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from breastseg.predict.slices import predict_slice, predict_triplanar


class Echo(nn.Module):
    """Logits (0, 4·(x − 0.5)) from the first channel: tumour probability = sigmoid(4·(x − 0.5))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fg = 4.0 * (x[:, :1] - 0.5)
        return torch.cat([torch.zeros_like(fg), fg], dim=1)


def expected(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-4.0 * (x - 0.5)))


def test_slice_prediction_pads_and_crops() -> None:
    x = np.random.default_rng(0).random((2, 13, 21)).astype(np.float32)
    prob = predict_slice([Echo()], x, multiple=8)
    assert prob.shape == (13, 21)
    np.testing.assert_allclose(prob, expected(x[0]), rtol=1e-5)


def test_triplanar_averages_three_axes_and_skips_empty_slices() -> None:
    rng = np.random.default_rng(1)
    vol = rng.random((1, 6, 7, 9)).astype(np.float32)
    # the echo network is pointwise, so every axis gives the same answer and so does the average
    np.testing.assert_allclose(predict_triplanar([Echo()], vol, multiple=4, batch_size=3), expected(vol[0]), rtol=1e-5)
    within = np.zeros((6, 7, 9), bool)
    within[2:4, 3:5, 1:8] = True
    out = predict_triplanar([Echo()], vol, multiple=4, within=within)
    # a voxel whose three slices all hold tissue gets the full value; one outside every tissue slice gets 0
    np.testing.assert_allclose(out[2, 3, 1], expected(vol[0, 2, 3, 1]), rtol=1e-5)
    assert out[0, 0, 0] == 0.0
    # a voxel in tissue slices along z and y but not x (x = 0 has no tissue): two thirds of the value
    np.testing.assert_allclose(out[2, 3, 0], 2 / 3 * expected(vol[0, 2, 3, 0]), rtol=1e-5)
