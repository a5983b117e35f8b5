"""Tiled inference of a valid-padding network: output tiles cover the volume edge to edge, so a convolution-only
valid network tiled equals the same convolutions run once over the zero-padded volume."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from torch import nn

from breastseg.nets.valid_unet import ValidUNetConfig
from breastseg.predict.valid_tiles import predict_valid_tiles, tile_starts


class TwoValidConvs:
    """Two 3 × 3 × 3 valid convolutions: output = input − 4 per axis, any input of at least 5 accepted."""

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        return tuple(int(n) - 4 for n in input_shape)  # type: ignore[return-value]

    def largest_window(self, at_most: Sequence[int], at_least: Sequence[int]) -> tuple[int, int, int]:
        return tuple(max(int(a), int(b)) for a, b in zip(at_most, at_least, strict=True))  # type: ignore[return-value]

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv3d(2, 3, 3), nn.Tanh(), nn.Conv3d(3, 2, 3)).eval()


def test_tile_starts_cover_edge_to_edge_with_the_last_moved_back() -> None:
    assert tile_starts(10, 4) == [0, 4, 6]
    assert tile_starts(8, 4) == [0, 4]
    assert tile_starts(3, 4) == [0]
    for size, tile in [(37, 5), (100, 21), (21, 21)]:
        covered = np.zeros(size, bool)
        for s in tile_starts(size, tile):
            assert s >= 0 and s + tile <= size
            covered[s : s + tile] = True
        assert covered.all()


@pytest.mark.parametrize("shape", [(9, 23, 17), (3, 4, 30)])  # many tiles with moved-back last ones; a thin volume
def test_tiled_valid_convolutions_equal_one_pass_over_the_padded_volume(shape: tuple[int, int, int]) -> None:
    config = TwoValidConvs()
    net = config.build()
    volume = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    tiled = predict_valid_tiles([net], volume, config, patch=(7, 7, 7), max_factor=1.0)  # window 7: 3³-voxel tiles
    with torch.no_grad():
        padded = torch.nn.functional.pad(torch.from_numpy(volume)[None], (2, 2, 2, 2, 2, 2))
        reference = torch.softmax(net(padded), dim=1)[0, 1].numpy()
    assert tiled.shape == shape
    np.testing.assert_allclose(tiled, reference, atol=1e-6)


def test_the_studys_unet_on_one_tile_is_its_output_on_the_padded_volume() -> None:
    config = ValidUNetConfig(in_channels=2, first_channels=4)
    torch.manual_seed(0)
    net = config.build().eval()
    volume = np.random.default_rng(1).normal(size=(2, 3, 37, 37)).astype(np.float32)
    # window = the largest accepted size up to volume + margin: (21, 91, 91) → output (3, 37, 37), one tile
    assert config.largest_window((21, 91, 91), (19, 75, 75)) == (21, 91, 91)
    prob = predict_valid_tiles([net], volume, config, patch=(19, 75, 75))
    with torch.no_grad():
        padded = np.pad(volume, [(0, 0), (9, 9), (27, 27), (27, 27)])
        reference = torch.softmax(net(torch.from_numpy(padded)[None]), dim=1)[0, 1].numpy()
    np.testing.assert_allclose(prob, reference, atol=1e-5)
    two = predict_valid_tiles([net, net], volume, config, patch=(19, 75, 75))  # the mean of identical nets
    np.testing.assert_allclose(two, prob, atol=1e-6)
