"""Sliding-window inference of 3D networks with Gaussian weighting (nnU-Net's), on whole volumes.

Windows of the training patch size overlap by ``overlap`` (nnU-Net: 0.5); each window's softmax tumour
probability is weighted by a Gaussian centred on the window (σ = 1/8 of the window size: the window's border,
which saw the least context, counts least) and the weighted sum is normalised — MONAI's
``sliding_window_inference(mode="gaussian", sigma_scale=0.125)``. A volume smaller than the window along an
axis is padded by repeating its edge voxels (as training patches are at the volume's edge) and cropped back.
``mirror``: test-time augmentation — also predict the left-right (x) mirrored volume and average.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from breastseg.predict.device import Precision


@torch.no_grad()
def predict_sliding(
    nets: Sequence[nn.Module],
    channels: np.ndarray,
    window: Sequence[int],
    overlap: float = 0.5,
    batch_size: int = 2,
    precision: Precision = Precision.FLOAT32,
    mirror: bool = False,
) -> np.ndarray:
    """Mean tumour probability of ``nets`` on ``channels (C, z, y, x)`` → ``(z, y, x)`` float32 in [0, 1]."""
    window = tuple(int(w) for w in window)
    shape = channels.shape[1:]
    pad = [(0, max(0, w - s)) for w, s in zip(window, shape, strict=True)]
    volume = np.pad(channels, [(0, 0), *pad], mode="edge") if any(p[1] for p in pad) else channels
    weight = next(nets[0].parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    x = torch.from_numpy(np.ascontiguousarray(volume, np.float32))[None].to(device)

    def probability(net: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            logits = net(batch)
        return torch.softmax(logits.float(), dim=1)[:, 1:2]

    total = torch.zeros((1, 1, *volume.shape[1:]), device=device)
    runs = 0
    for net in nets:
        net.eval()
        views = [(x, False), (torch.flip(x, dims=(-1,)), True)] if mirror else [(x, False)]
        for view, flipped in views:
            prob: torch.Tensor = sliding_window_inference(  # type: ignore[assignment]
                view,
                window,
                batch_size,
                lambda b, net=net: probability(net, b),
                overlap=overlap,
                mode="gaussian",
                sigma_scale=0.125,
            )
            total += torch.flip(prob, dims=(-1,)) if flipped else prob
            runs += 1
    out = (total / runs)[0, 0].cpu().numpy()
    return np.ascontiguousarray(out[tuple(slice(0, s) for s in shape)], np.float32)
