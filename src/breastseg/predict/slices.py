"""Slice-wise inference: 2D networks on 2D images, and tri-planar on 3D volumes.

Inputs are normalised channels ``(C, y, x)`` or ``(C, z, y, x)``; outputs are tumour probabilities (softmax
channel 1) in [0, 1]. Images are padded (zeros, as background) to the network's size multiple and cropped back.
Batches run on the device the networks' weights are on; ``precision="bfloat16"`` runs them under autocast
(convolutions in bfloat16, the softmax in float32), which halves the time on CPUs with native bfloat16 (AVX-512
BF16, AMX) and GPUs and changes masks by a measured fraction of a percent (``benchmarks/specimen_inference.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from breastseg.nets.resunet import pad_multiple
from breastseg.predict.device import Precision


@torch.no_grad()
def predict_batch(
    nets: Sequence[nn.Module], x: np.ndarray, multiple: int, precision: Precision = Precision.FLOAT32
) -> np.ndarray:
    """Mean tumour probability of ``nets`` on a batch ``x (N, C, H, W)`` → ``(N, H, W)``, float32 on the CPU."""
    n, c, h, w = x.shape
    ph, pw = pad_multiple(h, multiple), pad_multiple(w, multiple)
    padded = np.zeros((n, c, ph, pw), np.float32)
    padded[:, :, :h, :w] = x
    weight = next(nets[0].parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    t = torch.from_numpy(padded).to(device)
    acc = torch.zeros((n, ph, pw), device=device)
    for net in nets:
        net.eval()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            logits = net(t)
        acc += torch.softmax(logits.float(), dim=1)[:, 1]
    return (acc / len(nets))[:, :h, :w].cpu().numpy()


def predict_slice(nets: Sequence[nn.Module], channels: np.ndarray, multiple: int) -> np.ndarray:
    """Tumour probability of one 2D image ``(C, H, W)`` → ``(H, W)``."""
    return predict_batch(nets, channels[None], multiple)[0]


def _slices_to_run(keep: np.ndarray, step: int) -> np.ndarray:
    """Indices of the slices to run: every ``step``-th from the first to the last kept slice, and the last."""
    index = np.flatnonzero(keep)
    if step <= 1 or index.size == 0:
        return index
    lo, hi = int(index[0]), int(index[-1])
    return np.unique(np.append(np.arange(lo, hi + 1, step), hi))


def _fill_between(prob: np.ndarray, run: np.ndarray) -> None:
    """Linear interpolation, in place along axis 0, of the slices between consecutive run slices."""
    for a, b in itertools.pairwise(run.tolist()):
        for j in range(a + 1, b):
            w = (j - a) / (b - a)
            prob[j] = (1.0 - w) * prob[a] + w * prob[b]


def predict_triplanar(
    nets: Sequence[nn.Module],
    channels: np.ndarray,
    multiple: int,
    batch_size: int = 16,
    within: np.ndarray | None = None,
    slice_step: int = 1,
    precision: Precision = Precision.FLOAT32,
    axes: Sequence[int] = (0, 1, 2),
) -> np.ndarray:
    """Tri-planar prediction of a volume ``(C, Z, Y, X)``: slice-wise along each axis, averaged over the axes
    (``axes``: along these only, for diagnostics; the study's method uses all three).

    Slices with no voxel of ``within`` (the tissue) are not run; their probability is 0. With ``slice_step``
    k > 1 only every k-th slice along each axis is run (plus the last tissue slice) and the slices between are
    linearly interpolated: a network's output changes little from one thin slice to the next, so this trades a
    small, measured difference (``benchmarks/specimen_inference.py``) for a k-fold saving. ``precision``: see
    :func:`predict_batch`.
    """
    _, *shape = channels.shape
    total = np.zeros(shape, np.float32)
    if not axes or any(a not in (0, 1, 2) for a in axes):
        raise ValueError(f"axes must be a non-empty selection of 0, 1, 2; got {tuple(axes)}")
    for axis in axes:
        moved = np.moveaxis(channels, axis + 1, 1)  # (C, n_slices, a, b)
        keep = (
            np.ones(moved.shape[1], bool)
            if within is None
            else np.asarray(np.moveaxis(within, axis, 0).any(axis=(1, 2)))
        )
        prob = np.zeros(moved.shape[1:], np.float32)
        index = _slices_to_run(keep, slice_step)
        for start in range(0, index.size, batch_size):
            chunk = index[start : start + batch_size]
            x = np.ascontiguousarray(np.moveaxis(moved[:, chunk], 0, 1))
            prob[chunk] = predict_batch(nets, x, multiple, precision)
        if slice_step > 1:
            _fill_between(prob, index)
        total += np.moveaxis(prob, 0, axis)
    return total / float(len(axes))
