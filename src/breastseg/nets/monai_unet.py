"""MONAI's standard 3D U-Net (``monai.networks.nets.UNet``: residual units, strided-convolution down-sampling,
transposed-convolution up-sampling, *same* padding) — the comparison network of the breast-MRI workflow.

Its strides follow the valid U-Net's pooling pattern (in-plane at every level, through-plane only where
``pool_axes`` says), so both networks see the same anisotropic field of view; input sizes must be multiples of
the product of the strides along each axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from breastseg.errors import InputError


@dataclass(frozen=True)
class MonaiUNetConfig:
    """Architecture of MONAI's UNet (channels per level; strides between levels along ``(z, y, x)``)."""

    in_channels: int = 4
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)  # ≈ 4.8 M parameters, near the valid U-Net's 3 M
    strides: tuple[tuple[int, int, int], ...] = ((1, 2, 2), (2, 2, 2), (1, 2, 2), (1, 2, 2))
    num_res_units: int = 2
    out_channels: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "strides", tuple(tuple(int(s) for s in st) for st in self.strides))
        if len(self.strides) != len(self.channels) - 1:
            raise InputError("MONAI UNet: one stride per level transition (len(channels) − 1)")

    @property
    def size_multiple(self) -> int:
        return max(math.prod(st[a] for st in self.strides) for a in range(3))

    def axis_multiples(self) -> tuple[int, int, int]:
        """Input sizes along ``(z, y, x)`` must be multiples of these."""
        return tuple(math.prod(st[a] for st in self.strides) for a in range(3))  # type: ignore[return-value]

    def build(self) -> nn.Module:
        from monai.networks.nets import UNet  # MONAI takes seconds to import: only when a network is built

        return UNet(
            spatial_dims=3,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            channels=self.channels,
            strides=self.strides,  # type: ignore[arg-type]  # MONAI takes per-axis strides too
            num_res_units=self.num_res_units,
        )
