"""The breast-MRI study's 3D U-Net (Hirsch et al. 2022, Supplement): valid convolutions, average pooling with
kernel 3 and stride 2, upsampling by a transposed convolution with *fixed* bilinear weights (0.5, 1, 0.5),
cropped skip connections, and an output only for the centre of the input patch — no padding anywhere, so no
border or checkerboard artefacts, and a patch's prediction never depends on where the patch was cut.

Layout (breastseg's, arithmetic checked in the tests): four down blocks (two valid convolutions + ReLU, then
average pooling) and four up blocks (fixed bilinear upsampling, crop of the one-voxel border the upsampling
cannot interpolate, the skip cropped to match and concatenated, two valid convolutions), 16 convolutions, then a
1 × 1 × 1 convolution to two-class logits. Level ℓ convolves with ``kernels[ℓ]`` and pools along the axes
``pool_axes[ℓ]`` marks. The defaults — 3 × 3 × 3 at the two upper levels, 1 × 1 × 1 below; in-plane pooling at
every level, through-plane (z, the thick-slice axis) only at the second — take the study's 19-slice patch down
to one output slice; 19 × 75 × 75 gives 1 × 21 × 21 and 19 × 91 × 91 the study's 1 × 37 × 37 (about 3 M
parameters at the default 52 first-level channels).

Average pooling with kernel 3 and stride 2 on an odd size ``2m + 1`` gives ``m`` samples centred on the even
input positions; the fixed transposed convolution puts them back at those positions and interpolates linearly
between them, so after the crop pooling followed by upsampling is exact on linear signals (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from breastseg.errors import InputError

BILINEAR_TAPS = (0.5, 1.0, 0.5)


@dataclass(frozen=True)
class ValidUNetConfig:
    """Architecture of the valid-padding U-Net (see the module docstring)."""

    in_channels: int = 4
    first_channels: int = 52
    kernels: tuple[int, ...] = (3, 3, 1, 1)
    pool_axes: tuple[tuple[bool, bool, bool], ...] = (
        (False, True, True),
        (True, True, True),
        (False, True, True),
        (False, True, True),
    )
    out_channels: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernels", tuple(int(k) for k in self.kernels))
        object.__setattr__(self, "pool_axes", tuple(tuple(bool(a) for a in p) for p in self.pool_axes))
        if len(self.kernels) != len(self.pool_axes):
            raise InputError("valid U-Net: one kernel size and one pooling pattern per level")

    @property
    def size_multiple(self) -> int:
        return 1  # sizes are constrained by output_shape(), not by a multiple

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """The output's ``(z, y, x)`` for an input patch, or :class:`InputError` when the patch does not fit (a size
        that pooling cannot halve exactly, or that the valid convolutions use up)."""
        return tuple(self._axis(int(n), axis) for axis, n in enumerate(input_shape))  # type: ignore[return-value]

    def largest_window(self, at_most: Sequence[int], at_least: Sequence[int]) -> tuple[int, int, int]:
        """Per axis, the largest input size ≤ ``at_most`` the network accepts (but not below ``at_least``, a size
        it accepts): bigger inference windows than the training patch mean fewer tiles."""
        sizes = []
        for axis, (hi, lo) in enumerate(zip(at_most, at_least, strict=True)):
            best = int(lo)
            for n in range(max(int(hi), int(lo)), int(lo), -1):
                try:
                    self._axis(n, axis)
                except InputError:
                    continue
                best = n
                break
            sizes.append(best)
        return tuple(sizes)  # type: ignore[return-value]

    def _axis(self, n: int, axis: int) -> int:
        start = n
        skips = []
        for k, pools in zip(self.kernels, self.pool_axes, strict=True):
            n -= 2 * (k - 1)
            if n < 1:
                raise InputError(f"input size {start} on axis {axis} is used up by the valid convolutions")
            skips.append(n)
            if pools[axis]:
                if n < 3 or n % 2 == 0:
                    raise InputError(
                        f"input size {start} on axis {axis}: pooling meets an even size {n}; use odd sizes"
                    )
                n = (n - 3) // 2 + 1
        for k, skip, pools in zip(reversed(self.kernels), reversed(skips), reversed(self.pool_axes), strict=True):
            if pools[axis]:
                n = 2 * n - 1  # upsampled (2n + 1) less the one-voxel border
            if skip < n:
                raise InputError(f"input size {start} on axis {axis}: the skip is smaller than the upsampled path")
            n -= 2 * (k - 1)
            if n < 1:
                raise InputError(f"input size {start} on axis {axis} is used up by the valid convolutions")
        return n

    def build(self) -> nn.Module:
        return ValidUNet(self)


def _block(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, k), nn.ReLU(inplace=True), nn.Conv3d(c_out, c_out, k), nn.ReLU(inplace=True)
    )


def bilinear_kernel(pools: Sequence[bool]) -> torch.Tensor:
    """The fixed 3D transposed-convolution kernel: (0.5, 1, 0.5) along upsampled axes, 1 along the others."""
    taps = [torch.tensor(BILINEAR_TAPS) if p else torch.ones(1) for p in pools]
    return taps[0][:, None, None] * taps[1][None, :, None] * taps[2][None, None, :]


class FixedBilinearUp(nn.Module):
    kernel: torch.Tensor

    """×2 linear upsampling along the chosen axes by a transposed convolution with fixed weights (no parameters),
    the one-voxel border (interpolated from one side only) cropped: ``n → 2n − 1``."""

    def __init__(self, pools: Sequence[bool]) -> None:
        super().__init__()
        self.pools = tuple(pools)
        self.register_buffer("kernel", bilinear_kernel(pools)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        weight = self.kernel.expand(c, 1, *self.kernel.shape[2:]).to(x.dtype)
        stride = tuple(2 if p else 1 for p in self.pools)
        y = F.conv_transpose3d(x, weight, stride=stride, groups=c)
        for axis, pooled in enumerate(self.pools):
            if pooled:
                y = y.narrow(2 + axis, 1, y.shape[2 + axis] - 2)
        return y


def centre_crop(x: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """``x (N, C, *s)`` cropped about its centre to ``spatial`` (the identity where the sizes agree): the skips
    here, and the labels of a valid network's output, which covers only the centre of its input patch."""
    for axis, want in enumerate(spatial):
        if x.shape[2 + axis] != want:
            x = x.narrow(2 + axis, (x.shape[2 + axis] - want) // 2, want)
    return x


class ValidUNet(nn.Module):
    def __init__(self, config: ValidUNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.first_channels * 2**i for i in range(len(config.kernels))]
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c = config.in_channels
        for w, k, pools in zip(widths, config.kernels, config.pool_axes, strict=True):
            self.down.append(_block(c, w, k))
            kz, ky, kx = (3 if p else 1 for p in pools)
            sz, sy, sx = (2 if p else 1 for p in pools)
            self.pool.append(nn.AvgPool3d((kz, ky, kx), stride=(sz, sy, sx)))
            c = w
        self.up = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        for w, k, pools in zip(reversed(widths), reversed(config.kernels), reversed(config.pool_axes), strict=True):
            self.up.append(FixedBilinearUp(pools))
            self.up_conv.append(_block(c + w, w, k))
            c = w
        self.head = nn.Conv3d(c, config.out_channels, 1)
        for module in self.modules():  # He initialisation: 16 plain ReLU convolutions with no normalisation would
            if isinstance(module, nn.Conv3d):  # otherwise shrink the signal ~2.4× per layer (PyTorch's default)
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block, pool in zip(self.down, self.pool, strict=True):
            x = block(x)
            skips.append(x)
            x = pool(x)
        for up, block, skip in zip(self.up, self.up_conv, reversed(skips), strict=True):
            x = up(x)
            x = block(torch.cat([x, centre_crop(skip, x.shape[2:])], dim=1))
        return self.head(x)
