"""The breast-MRI valid-padding U-Net: output-size arithmetic for the study's patch, exact fixed bilinear
upsampling, and the valid-convolution property that a patch's output never depends on where it was cut."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from breastseg.errors import InputError
from breastseg.nets.valid_unet import FixedBilinearUp, ValidUNetConfig


def test_output_size_for_the_studys_patch_worked_by_hand() -> None:
    # in-plane 75: level convs 3,3,1,1 and pooling k3 s2 at every level
    #   down: 75 −4 → 71 → pool 35 | 35 −4 → 31 → 15 | 15 → 7 | 7 → 3
    #   up:   3 → 5 (2n − 1), skip 7 | 5 → 9, skip 15 | 9 → 17, skip 31, −4 → 13 | 13 → 25, skip 71, −4 → 21
    # through-plane 19: convs 3,3,1,1, pooling only at level 2
    #   down: 19 −4 → 15 | 15 −4 → 11 → pool 5 | 5 | 5;  up: 5 | 5 | 5 → 9, skip 11, −4 → 5 | 5 −4 → 1
    config = ValidUNetConfig()
    assert config.output_shape((19, 75, 75)) == (1, 21, 21)
    assert config.output_shape((19, 91, 91)) == (1, 37, 37)  # the study's 37 × 37 centre output
    out = config.build()(torch.zeros(1, 4, 19, 75, 75))
    assert tuple(out.shape) == (1, 2, 1, 21, 21)
    with pytest.raises(InputError, match="even size"):
        config.output_shape((19, 76, 76))


def test_about_three_million_parameters_and_the_upsampling_has_none() -> None:
    net = ValidUNetConfig().build()
    assert 2.8e6 < sum(p.numel() for p in net.parameters()) < 3.2e6
    assert not list(FixedBilinearUp((True, True, True)).parameters())


def test_fixed_upsampling_is_exact_linear_interpolation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 6))
    up = FixedBilinearUp((True, True, True))(torch.from_numpy(x)[None, None].float())[0, 0].numpy()
    expected = x
    for axis in range(3):  # separable: along each axis, originals at even positions, midpoints between
        n = expected.shape[axis]
        expected = np.apply_along_axis(
            lambda v, n=n: np.interp(np.arange(2 * n - 1) / 2.0, np.arange(n), v), axis, expected
        )
    assert up.shape == (7, 9, 11)
    np.testing.assert_allclose(up, expected, atol=1e-5)
    in_plane = FixedBilinearUp((False, True, True))(torch.ones(1, 1, 3, 4, 4))
    assert tuple(in_plane.shape) == (1, 1, 3, 7, 7) and torch.allclose(in_plane, torch.ones(()))


def test_pooling_then_upsampling_returns_a_linear_signal() -> None:
    z, y, x = np.meshgrid(np.arange(9.0), np.arange(9.0), np.arange(9.0), indexing="ij")
    ramp = torch.from_numpy(2 * z - y + 0.5 * x)[None, None].float()
    pooled = torch.nn.AvgPool3d(3, stride=2)(ramp)  # 9 → 4 samples at positions 1, 3, 5, 7
    back = FixedBilinearUp((True, True, True))(pooled)  # 4 → 7: positions 1 … 7
    torch.testing.assert_close(back, ramp[..., 1:8, 1:8, 1:8])


def test_a_patch_output_does_not_depend_on_where_it_was_cut() -> None:
    torch.manual_seed(0)
    net = ValidUNetConfig(first_channels=4).build().eval()
    big = torch.randn(1, 4, 19, 91, 91)
    with torch.no_grad():
        whole = net(big)
        part = net(big[..., 16:, 16:])  # shifted by the in-plane pooling stride (2⁴)
    assert tuple(part.shape[2:]) == (1, 21, 21)
    torch.testing.assert_close(part, whole[..., 16:, 16:], atol=1e-5, rtol=1e-4)


def test_largest_window_is_the_biggest_size_the_network_takes() -> None:
    config = ValidUNetConfig()
    # accepted sizes: z odd from 19 (19 → 1, 21 → 3, 27 → 9); in-plane 59 + 16k (75 → 21, 91 → 37, 155 → 101)
    assert config.largest_window((28, 160, 100), (19, 75, 75)) == (27, 155, 91)
    assert config.output_shape((27, 155, 91)) == (9, 101, 37)
    assert config.largest_window((10, 60, 60), (19, 75, 75)) == (19, 75, 75)  # never below the training patch


def test_he_initialisation_carries_the_signal_through_sixteen_relu_convolutions() -> None:
    # without normalisation layers, PyTorch's default initialisation shrinks the signal at every layer; He's
    # keeps E[x²] about constant, so the logits at initialisation are neither vanishing nor exploding
    torch.manual_seed(0)
    net = ValidUNetConfig(in_channels=4, first_channels=8).build().eval()
    with torch.no_grad():
        logits = net(torch.randn(2, 4, 19, 75, 75))
    default = ValidUNetConfig(in_channels=4, first_channels=8).build()
    for module in default.modules():
        if isinstance(module, torch.nn.Conv3d):
            module.reset_parameters()  # PyTorch's own initialisation, for contrast
    with torch.no_grad():
        shrunk = default.eval()(torch.randn(2, 4, 19, 75, 75))
    assert 0.3 < float(logits.std()) < 30.0
    assert float(shrunk.std()) < 0.1 * float(logits.std())  # measured: 0.054 against 0.96
