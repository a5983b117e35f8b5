"""nnU-Net's 3D U-Net as MONAI's ``DynUNet``, planned from the patch size and the voxel spacing as nnU-Net does.

Planning rule (Isensee et al. 2021, as in MONAI's nnU-Net tutorial): starting from the patch size (voxels) and the
target spacing (mm), each level halves the axes whose spacing is at most twice the finest spacing and whose size
is still at least 8 voxels (an anisotropic axis waits until the others have caught up); kernels are 3 on those
axes and 1 on an axis still more than twice as coarse. Levels stop when no axis can be halved or at
``max_levels``. Channels start at ``base_filters`` and double per level up to ``max_filters`` (nnU-Net: 32 and
320). Two-class logits out; instance norm and leaky ReLU (nnU-Net's).

Input ``(N, C, z, y, x)``; sizes must be multiples of :attr:`DynUNetConfig.axis_multiples` per axis (the patch
size the plan was made for always is; sliding-window inference feeds exactly that size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from breastseg.errors import InputError


@dataclass(frozen=True)
class DynUNetConfig:
    """A planned DynUNet: per-level kernel sizes and strides (first level stride 1) and channel counts.

    Tuples (not lists) so that the configuration is hashable and round-trips through JSON via
    :func:`breastseg.nets.net_config_from_dict`.
    """

    in_channels: int
    kernels: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]
    filters: tuple[int, ...]
    out_channels: int = 2

    def __post_init__(self) -> None:
        # JSON gives lists back: store tuples, so that equal plans compare equal
        object.__setattr__(self, "kernels", tuple(tuple(int(v) for v in k) for k in self.kernels))
        object.__setattr__(self, "strides", tuple(tuple(int(v) for v in s) for s in self.strides))
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        if not len(self.kernels) == len(self.strides) == len(self.filters):
            raise InputError("DynUNet plan: kernels, strides and filters need one entry per level")

    @property
    def axis_multiples(self) -> tuple[int, ...]:
        """Each spatial size must be a multiple of this (the product of the strides along that axis)."""
        return tuple(int(v) for v in np.prod(np.asarray(self.strides), axis=0))

    @property
    def size_multiple(self) -> int:
        """The largest per-axis multiple (for code that pads every axis alike)."""
        return max(self.axis_multiples)

    def build(self) -> nn.Module:
        from monai.networks.nets import DynUNet  # MONAI takes seconds to import: only when a network is built

        return DynUNet(
            spatial_dims=len(self.kernels[0]),
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=[list(k) for k in self.kernels],
            strides=[list(s) for s in self.strides],
            upsample_kernel_size=[list(s) for s in self.strides[1:]],
            filters=list(self.filters),
            norm_name=("INSTANCE", {"affine": True}),
            act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
            deep_supervision=False,
        )


def plan_dynunet(
    patch_size: Sequence[int],
    spacing_mm: Sequence[float],
    in_channels: int,
    base_filters: int = 32,
    max_filters: int = 320,
    max_levels: int = 6,
) -> DynUNetConfig:
    """nnU-Net's topology for a patch of ``patch_size`` voxels at ``spacing_mm`` (see the module docstring).

    Raises:
        InputError: a patch that cannot be halved even once (every axis under 8 voxels).
    """
    sizes = [float(s) for s in patch_size]
    spacings = [float(s) for s in spacing_mm]
    if len(sizes) != len(spacings):
        raise InputError(f"patch size {tuple(patch_size)} and spacing {tuple(spacing_mm)} differ in dimension")
    kernels: list[tuple[int, ...]] = []
    strides: list[tuple[int, ...]] = [(1,) * len(sizes)]
    while len(strides) < max_levels:
        finest = min(spacings)
        ratio = [s / finest for s in spacings]
        stride = tuple(2 if r <= 2 and size >= 8 and size % 2 == 0 else 1 for r, size in zip(ratio, sizes, strict=True))
        if all(s == 1 for s in stride):
            break
        kernels.append(tuple(3 if r <= 2 else 1 for r in ratio))
        strides.append(stride)
        sizes = [size / s for size, s in zip(sizes, stride, strict=True)]
        spacings = [sp * s for sp, s in zip(spacings, stride, strict=True)]
    if len(strides) == 1:
        raise InputError(f"patch size {tuple(patch_size)} is too small for a U-Net (an axis of 8 or more is needed)")
    kernels.append((3,) * len(sizes))  # the bottleneck
    filters = tuple(min(base_filters * 2**i, max_filters) for i in range(len(strides)))
    return DynUNetConfig(in_channels, tuple(kernels), tuple(strides), filters)
