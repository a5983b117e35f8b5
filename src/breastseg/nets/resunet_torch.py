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

from breastseg.nets.resunet import NORM_GROUPS

if TYPE_CHECKING:
    from breastseg.nets.resunet import ResUNetConfig

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_INSTANCE = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_BATCH = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def _norm_layer(config: ResUNetConfig, channels: int) -> nn.Module:
    """The norm :func:`breastseg.nets.resunet._norm` asks MONAI for, built directly."""
    dims = config.spatial_dims
    if config.norm == "instance":
        return _INSTANCE[dims](channels, affine=True)
    if config.norm == "batch":
        return _BATCH[dims](channels)
    return nn.GroupNorm(NORM_GROUPS[config.norm], channels)


class _Convolution(nn.Sequential):
    """MONAI's ``Convolution``: ``conv`` then, unless ``conv_only``, ``adn`` (norm N, dropout D, PReLU A); kernel
    size, norm and dropout from ``config``."""

    def __init__(
        self,
        config: ResUNetConfig,
        in_channels: int,
        out_channels: int,
        stride: int,
        conv_only: bool = False,
        transposed: bool = False,
    ) -> None:
        super().__init__()
        dims, k = config.spatial_dims, config.kernel_size
        padding = (k - 1) // 2
        conv: nn.Module
        if transposed:
            conv = _CONV_T[dims](
                in_channels, out_channels, k, stride=stride, padding=padding, output_padding=stride - 1
            )
        else:
            conv = _CONV[dims](in_channels, out_channels, k, stride=stride, padding=padding)
        self.add_module("conv", conv)
        if not conv_only:
            adn = nn.Sequential()
            adn.add_module("N", _norm_layer(config, out_channels))
            adn.add_module("D", nn.Dropout(config.dropout))
            adn.add_module("A", nn.PReLU())
            self.add_module("adn", adn)


class _ResidualUnit(nn.Module):
    """MONAI's ``ResidualUnit``: ``conv`` (``subunits`` convolutions) plus ``residual`` (identity, or a strided /
    1 × 1 convolution where the stride or the channel count changes)."""

    def __init__(
        self,
        config: ResUNetConfig,
        in_channels: int,
        out_channels: int,
        stride: int,
        subunits: int,
        last_conv_only: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential()
        channels, unit_stride = in_channels, stride
        for i in range(subunits):
            conv_only = last_conv_only and i == subunits - 1
            self.conv.add_module(f"unit{i}", _Convolution(config, channels, out_channels, unit_stride, conv_only))
            channels, unit_stride = out_channels, 1
        self.residual: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            k = config.kernel_size
            k, pad = (k, (k - 1) // 2) if stride != 1 else (1, 0)
            self.residual = _CONV[config.spatial_dims](in_channels, out_channels, k, stride=stride, padding=pad)

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

    def _block(self, in_channels: int, out_channels: int, channels: list[int], top: bool) -> nn.Module:
        c, units = self.config, self.config.num_res_units
        level = channels[0]
        if len(channels) > 2:
            sub = self._block(level, level, channels[1:], top=False)
            up_in = 2 * level
        else:
            sub = _ResidualUnit(c, level, channels[1], 1, units)
            up_in = level + channels[1]
        down = _ResidualUnit(c, in_channels, level, 2, units)
        up = nn.Sequential(
            _Convolution(c, up_in, out_channels, 2, transposed=True),
            _ResidualUnit(c, out_channels, out_channels, 1, 1, last_conv_only=top),
        )
        return nn.Sequential(down, _SkipConnection(sub), up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(x)
        return out
