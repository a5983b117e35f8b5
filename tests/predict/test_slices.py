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


class Identity(nn.Module):
    """Logits (0, logit(x)) from the first channel: tumour probability = x exactly (for x in (0, 1))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, :1].clamp(1e-6, 1 - 1e-6)
        return torch.cat([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


def test_slice_step_is_exact_for_a_field_linear_along_each_axis() -> None:
    # f = a + b·z + c·y + d·x: linear interpolation between run slices reproduces it along every axis
    z, y, x = np.meshgrid(np.arange(17), np.arange(11), np.arange(13), indexing="ij")
    f = (0.1 + 0.02 * z + 0.03 * y + 0.015 * x).astype(np.float32)[None]
    for step in (2, 3, 5):
        out = predict_triplanar([Identity()], f, multiple=4, slice_step=step)
        np.testing.assert_allclose(out, f[0], atol=2e-5)


def test_slice_step_error_obeys_the_linear_interpolation_bound() -> None:
    # f = 0.2 + 0.6·(z/16)²: interpolating over k slices errs by at most k²·max|f''|/8 per axis, and only the
    # z-axis slices interpolate across z (the y and x slices hold the exact value), so the mean errs by a third
    z = np.arange(17, dtype=np.float32)
    f = np.broadcast_to((0.2 + 0.6 * (z / 16) ** 2)[:, None, None], (17, 6, 7)).astype(np.float32)[None]
    exact = predict_triplanar([Identity()], f, multiple=4, slice_step=1)
    second_derivative = 2 * 0.6 / 16**2
    for step in (2, 4):
        err = np.abs(predict_triplanar([Identity()], f, multiple=4, slice_step=step) - exact).max()
        assert 0 < err <= step**2 * second_derivative / 8 / 3 + 1e-6
    # the last tissue slice is always run: no extrapolation past it
    within = np.zeros((17, 6, 7), bool)
    within[3:12] = True
    out = predict_triplanar([Identity()], f, multiple=4, within=within, slice_step=4)
    np.testing.assert_allclose(out[11, 0, 0], f[0, 11, 0, 0], rtol=1e-5)  # z-slice 11 = 3 + 2·4: run
    # beyond the tissue's last z-slice only the y and x slices (which do hold tissue) contribute: 2/3 of f
    np.testing.assert_allclose(out[12:], 2 / 3 * f[0, 12:], rtol=1e-5)
    np.testing.assert_allclose(out[:3], 2 / 3 * f[0, :3], rtol=1e-5)


def test_one_axis_alone_counts_only_its_own_tissue_slices() -> None:
    vol = np.random.default_rng(2).random((1, 6, 7, 9)).astype(np.float32)
    within = np.zeros((6, 7, 9), bool)
    within[2:4, 3:5, 1:8] = True
    # (2, 3, 0): its z-slice 2 and y-row 3 hold tissue, its x-column 0 does not
    for axes, share in (((0,), 1.0), ((1,), 1.0), ((2,), 0.0), ((0, 2), 0.5)):
        out = predict_triplanar([Echo()], vol, multiple=4, within=within, axes=axes)
        np.testing.assert_allclose(out[2, 3, 0], share * expected(vol[0, 2, 3, 0]), rtol=1e-5)
