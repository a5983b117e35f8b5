"""Tiled inference of a *valid-padding* network (the breast-MRI study's U-Net), on whole volumes.

A valid network maps an input window to a smaller output that covers only the window's centre, and its output at
a voxel does not depend on where the window was cut (no padding anywhere). So the volume is padded by the
network's margin — half the difference between input and output size per axis, constant ``pad_value`` (0: air
after the MRI harmonisation) — and cut into windows whose outputs tile the volume edge to edge; the last tile on an
axis is moved back to end at the volume's edge (its overlap is simply overwritten: the values agree up to the
pooling phase). No weighting or stitching is needed, unlike a padded network's sliding windows
(:mod:`breastseg.predict.sliding`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from breastseg.errors import InputError
from breastseg.predict.device import Precision
from breastseg.predict.sliding import predict_sliding


@runtime_checkable
class ValidNetShape(Protocol):
    """What tiling needs of a valid network's configuration (:class:`breastseg.nets.ValidUNetConfig`)."""

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]: ...

    def largest_window(self, at_most: Sequence[int], at_least: Sequence[int]) -> tuple[int, int, int]: ...


def tile_starts(size: int, tile: int) -> list[int]:
    """Output-tile starts covering ``0 … size − 1`` with tiles of ``tile`` voxels, the last ending at ``size``."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile))
    return [*starts, size - tile]


@torch.no_grad()
def predict_valid_tiles(
    nets: Sequence[nn.Module],
    channels: np.ndarray,
    config: ValidNetShape,
    patch: Sequence[int],
    max_factor: float = 2.0,
    pad_value: float = 0.0,
    batch_size: int = 4,
    precision: Precision = Precision.FLOAT32,
) -> np.ndarray:
    """Mean tumour probability of ``nets`` on ``channels (C, z, y, x)`` → ``(z, y, x)`` float32 in [0, 1].

    Args:
        config: the networks' configuration (their input → output size map).
        patch: the training patch ``(z, y, x)``; the inference window is the largest size the network accepts
            up to ``max_factor`` × the patch and no larger than the padded volume (fewer, bigger tiles; memory
            grows with the window).
    """
    patch = tuple(int(p) for p in patch)
    margin2 = [p - o for p, o in zip(patch, config.output_shape(patch), strict=True)]
    cap = [min(s + m, int(max_factor * p)) for s, m, p in zip(channels.shape[1:], margin2, patch, strict=True)]
    window = config.largest_window(cap, patch)
    out = tuple(int(o) for o in config.output_shape(window))
    margins = []
    for axis, (w, o) in enumerate(zip(window, out, strict=True)):
        if (w - o) % 2:
            raise InputError(f"valid network: window {w} and output {o} on axis {axis} differ by an odd amount")
        margins.append((w - o) // 2)
    shape = channels.shape[1:]
    # the output tile may not exceed the volume: pad the volume up to one output tile where it is smaller
    grow = [max(0, o - s) for o, s in zip(out, shape, strict=True)]
    pad = [(m, m + g) for m, g in zip(margins, grow, strict=True)]
    volume = np.pad(np.asarray(channels, np.float32), [(0, 0), *pad], constant_values=pad_value)
    full = tuple(s + g for s, g in zip(shape, grow, strict=True))
    weight = next(nets[0].parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    starts = list(itertools.product(*(tile_starts(s, o) for s, o in zip(full, out, strict=True))))
    total = np.zeros(full, np.float32)
    for net in nets:
        net.eval()
        single = np.zeros(full, np.float32)  # overlapping last tiles overwrite: one network's values agree there
        for b in range(0, len(starts), batch_size):
            chunk = starts[b : b + batch_size]
            cuts = [(slice(None), *(slice(s, s + w) for s, w in zip(st, window, strict=True))) for st in chunk]
            x = np.stack([volume[c] for c in cuts])
            xt = torch.from_numpy(x).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
                logits = net(xt)
            prob = torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy()
            if prob.shape[1:] != out:
                raise InputError(f"the network gave {prob.shape[1:]} for window {window}, expected {out}")
            for st, p in zip(chunk, prob, strict=True):
                single[tuple(slice(s, s + o) for s, o in zip(st, out, strict=True))] = p
        total += single
    total /= len(nets)
    return total[tuple(slice(0, s) for s in shape)]


def predict_whole_volume(
    nets: Sequence[nn.Module],
    channels: np.ndarray,
    config: object,
    patch: Sequence[int],
    precision: Precision = Precision.FLOAT32,
) -> np.ndarray:
    """Tumour probability of a 3D network over a whole volume: a valid-padding network (its ``config`` maps input
    to output sizes) by edge-to-edge output tiles, any other by Gaussian sliding windows of ``patch``."""
    if isinstance(config, ValidNetShape):
        return predict_valid_tiles(nets, channels, config, patch, precision=precision)
    return predict_sliding(nets, channels, patch, precision=precision)
