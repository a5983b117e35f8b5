"""The Residual U-Net's forward pass in PyTorch alone, for inference without importing MONAI.

MONAI's ``UNet`` (:mod:`breastseg.nets.resunet`) is what the study trained and what the trainer builds; importing
``monai.networks.nets`` also imports torchvision, ``torch._dynamo`` and MONAI's data and transform packages, which
costs seconds of start-up on a small CPU (``benchmarks/specimen_inference.py`` measures it). A command that only
runs trained networks builds this module instead: the same layers in the same order under the same parameter
names (``model.0.conv.unit0.conv.weight``, ``model.1.submodule.…``, ``model.2.0.conv.weight``, …), so a bundle's
state dict loads into either strictly, and the outputs agree to float32 rounding (``tests/nets``).

Layout, as MONAI builds it: each level is ``Sequential(down, SkipConnection(next level), up)``; ``down`` is a
residual unit of ``num_res_units`` convolutions (the first strided) plus a strided or 1 × 1 convolution as its
residual path; the bottom level is a residual unit at stride 1; ``up`` is a transposed convolution (stride 2,
output padding 1) followed by a one-convolution residual unit, whose last convolution has no norm or activation at
the top level. Every convolution but that one is followed by norm, dropout (identity at inference) and PReLU.
Input ``(N, C, y, x)`` (or ``(N, C, z, y, x)`` for ``spatial_dims=3``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from breastseg.nets.resunet import Norm, ResUNetConfig

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_INSTANCE = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_BATCH = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def _norm_layer(norm: Norm, channels: int, dims: int) -> nn.Module:
    """The norm :func:`breastseg.nets.resunet._norm` asks MONAI for, built directly."""
    if norm == "instance":
        return _INSTANCE[dims](channels, affine=True)
    if norm == "batch":
        return _BATCH[dims](channels)
    return nn.GroupNorm(1 if norm == "layer" else 2, channels)


class _Convolution(nn.Sequential):
    """MONAI's ``Convolution``: ``conv`` then, unless ``conv_only``, ``adn`` (norm N, dropout D, PReLU A)."""

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        stride: int,
        kernel_size: int,
        norm: Norm,
        dropout: float,
        conv_only: bool = False,
        transposed: bool = False,
    ) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2
        if transposed:
            self.add_module(
                "conv",
                _CONV_T[dims](
                    in_channels, out_channels, kernel_size, stride=stride, padding=padding, output_padding=stride - 1
                ),
            )
        else:
            self.add_module("conv", _CONV[dims](in_channels, out_channels, kernel_size, stride=stride, padding=padding))
        if not conv_only:
            adn = nn.Sequential()
            adn.add_module("N", _norm_layer(norm, out_channels, dims))
            adn.add_module("D", nn.Dropout(dropout))
            adn.add_module("A", nn.PReLU())
            self.add_module("adn", adn)


class _ResidualUnit(nn.Module):
    """MONAI's ``ResidualUnit``: ``conv`` (``subunits`` convolutions) plus ``residual`` (identity, or a strided /
    1 × 1 convolution where the stride or the channel count changes)."""

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        stride: int,
        kernel_size: int,
        subunits: int,
        norm: Norm,
        dropout: float,
        last_conv_only: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential()
        channels, unit_stride = in_channels, stride
        for i in range(max(1, subunits)):
            conv_only = last_conv_only and i == max(1, subunits) - 1
            self.conv.add_module(
                f"unit{i}",
                _Convolution(dims, channels, out_channels, unit_stride, kernel_size, norm, dropout, conv_only),
            )
            channels, unit_stride = out_channels, 1
        self.residual: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            k, pad = (kernel_size, (kernel_size - 1) // 2) if stride != 1 else (1, 0)
            self.residual = _CONV[dims](in_channels, out_channels, k, stride=stride, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.residual(x)


class _SkipConnection(nn.Module):
    """MONAI's ``SkipConnection`` (mode ``cat``): the input and ``submodule``'s output, stacked as channels."""

    def __init__(self, submodule: nn.Module) -> None:
        super().__init__()
        self.submodule = submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.submodule(x)], dim=1)


class PlainResUNet(nn.Module):
    """The network :func:`breastseg.nets.resunet.build_resunet` builds with MONAI, with PyTorch layers only.

    For inference (it has the same parameters, so it also trains, but the study's trainer uses MONAI's module);
    ``num_res_units`` must be ≥ 1 (the ResU-Net's residual units).
    """

    def __init__(self, config: ResUNetConfig) -> None:
        super().__init__()
        if config.num_res_units < 1:
            raise ValueError("the plain ResU-Net needs residual units (num_res_units >= 1)")
        if config.spatial_dims not in _CONV:
            raise ValueError(f"spatial_dims must be 2 or 3, got {config.spatial_dims}")
        self.config = config
        channels = [config.first_channels * 2**i for i in range(config.depth)]
        self.model = self._block(config.in_channels, config.out_channels, channels, top=True)

    def _residual(self, in_channels: int, out_channels: int, stride: int, subunits: int, last: bool) -> nn.Module:
        c = self.config
        return _ResidualUnit(
            c.spatial_dims, in_channels, out_channels, stride, c.kernel_size, subunits, c.norm, c.dropout, last
        )

    def _block(self, in_channels: int, out_channels: int, channels: list[int], top: bool) -> nn.Module:
        c, units = self.config, self.config.num_res_units
        level = channels[0]
        if len(channels) > 2:
            sub = self._block(level, level, channels[1:], top=False)
            up_in = 2 * level
        else:
            sub = self._residual(level, channels[1], 1, units, last=False)
            up_in = level + channels[1]
        down = self._residual(in_channels, level, 2, units, last=False)
        up = nn.Sequential(
            _Convolution(c.spatial_dims, up_in, out_channels, 2, c.kernel_size, c.norm, c.dropout, transposed=True),
            self._residual(out_channels, out_channels, 1, 1, last=top),
        )
        return nn.Sequential(down, _SkipConnection(sub), up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(x)
        return out
