"""Slice-wise inference: 2D networks on 2D images, and tri-planar on 3D volumes.

Inputs are normalised channels ``(C, y, x)`` or ``(C, z, y, x)``; outputs are tumour probabilities (softmax
channel 1) in [0, 1]. Images are padded (zeros, as background) to the network's size multiple and cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from breastseg.nets.resunet import pad_multiple


@torch.no_grad()
def predict_batch(nets: Sequence[nn.Module], x: np.ndarray, multiple: int) -> np.ndarray:
    """Mean tumour probability of ``nets`` on a batch ``x (N, C, H, W)`` → ``(N, H, W)``."""
    n, c, h, w = x.shape
    ph, pw = pad_multiple(h, multiple), pad_multiple(w, multiple)
    padded = np.zeros((n, c, ph, pw), np.float32)
    padded[:, :, :h, :w] = x
    t = torch.from_numpy(padded)
    acc = torch.zeros((n, ph, pw))
    for net in nets:
        net.eval()
        acc += torch.softmax(net(t), dim=1)[:, 1]
    return (acc / len(nets))[:, :h, :w].numpy()


def predict_slice(nets: Sequence[nn.Module], channels: np.ndarray, multiple: int) -> np.ndarray:
    """Tumour probability of one 2D image ``(C, H, W)`` → ``(H, W)``."""
    return predict_batch(nets, channels[None], multiple)[0]


def predict_triplanar(
    nets: Sequence[nn.Module],
    channels: np.ndarray,
    multiple: int,
    batch_size: int = 16,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Tri-planar prediction of a volume ``(C, Z, Y, X)``: slice-wise along each axis, averaged over the axes.

    Slices with no voxel of ``within`` (the tissue) are not run; their probability is 0.
    """
    _, *shape = channels.shape
    total = np.zeros(shape, np.float32)
    for axis in range(3):
        moved = np.moveaxis(channels, axis + 1, 1)  # (C, n_slices, a, b)
        keep = np.ones(moved.shape[1], bool) if within is None else np.moveaxis(within, axis, 0).any(axis=(1, 2))
        prob = np.zeros(moved.shape[1:], np.float32)
        index = np.flatnonzero(keep)
        for start in range(0, index.size, batch_size):
            chunk = index[start : start + batch_size]
            x = np.ascontiguousarray(np.moveaxis(moved[:, chunk], 0, 1))
            prob[chunk] = predict_batch(nets, x, multiple)
        total += np.moveaxis(prob, 0, axis)
    return total / 3.0
