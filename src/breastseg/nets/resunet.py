"""The specimen study's network: MONAI's ``UNet`` with residual units (Kerfoot et al.), PReLU, Kaiming init.

Input ``(batch, channels, y, x)`` (2D) with channels CT, PET or both; output two-class logits (softmax is
applied by the loss and the predictor). Spatial sizes must be multiples of ``2 ** (depth - 1)``;
:func:`pad_multiple` says by how much to pad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

Norm = Literal["instance", "batch", "layer", "group"]


@dataclass(frozen=True)
class ResUNetConfig:
    """Architecture hyper-parameters (the study searched depth, first-layer channels, kernel size, norm, dropout).

    Attributes:
        in_channels: 1 (CT or PET) or 2 (PET-CT).
        depth: number of resolution levels (channels double at each).
        first_channels: channels of the first level.
        kernel_size: convolution kernel size (odd).
        norm: instance, batch, layer (group norm with one group) or group (two groups).
        dropout: dropout probability.
        num_res_units: residual units per level (2 in the study's MONAI setting).
        spatial_dims: 2 for the study's 2D network.
    """

    in_channels: int = 2
    out_channels: int = 2
    depth: int = 4
    first_channels: int = 16
    kernel_size: int = 3
    norm: Norm = "instance"
    dropout: float = 0.0
    num_res_units: int = 2
    spatial_dims: int = 2

    @property
    def size_multiple(self) -> int:
        """Spatial sizes must be multiples of this (one halving per level below the first)."""
        return int(2 ** (self.depth - 1))

    def build(self) -> nn.Module:
        return build_resunet(self)

    def build_plain(self) -> nn.Module:
        """The same network in PyTorch alone (same parameter names; no MONAI import), for trained weights."""
        from breastseg.nets.resunet_torch import PlainResUNet

        return PlainResUNet(self)


#: group norm's group count for the norms that are group norms: layer norm is one group; two groups divide every
#: layer's channels, the two-class output included
NORM_GROUPS: dict[str, int] = {"layer": 1, "group": 2}


def _norm(norm: Norm, channels: int) -> Any:
    if norm == "instance":
        return ("instance", {"affine": True})
    if norm == "batch":
        return "batch"
    return ("group", {"num_groups": NORM_GROUPS[norm]})


def build_resunet(config: ResUNetConfig) -> nn.Module:
    """The residual U-Net with Kaiming-initialised convolutions (MONAI's, for training; a trained one runs as
    :class:`~breastseg.nets.resunet_torch.PlainResUNet`, which needs no MONAI import)."""
    from monai.networks.nets import UNet  # MONAI takes seconds to import: only when a network is built

    channels = [config.first_channels * 2**i for i in range(config.depth)]
    net = UNet(
        spatial_dims=config.spatial_dims,
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        channels=channels,
        strides=[2] * (config.depth - 1),
        kernel_size=config.kernel_size,
        up_kernel_size=config.kernel_size,
        num_res_units=config.num_res_units,
        act="PRELU",
        norm=_norm(config.norm, config.first_channels),
        dropout=config.dropout,
    )
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d | nn.ConvTranspose3d):
            nn.init.kaiming_normal_(module.weight, a=0.25, nonlinearity="leaky_relu")  # PReLU starts at 0.25
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net


def pad_multiple(size: int, multiple: int) -> int:
    """Smallest size ≥ ``size`` that is a multiple of ``multiple``."""
    return -(-size // multiple) * multiple


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters (the study's network has a few hundred thousand to millions)."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))
