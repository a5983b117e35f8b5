"""Device and precision selection (predict/device.py) and bfloat16's effect on a real network's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from breastseg.errors import InputError
from breastseg.predict.device import native_bfloat16, resolve_device, resolve_precision


def test_bfloat16_agrees_with_float32_and_auto_follows_the_hardware() -> None:
    """bfloat16 autocast changes a real (small, random) ResU-Net's probabilities by little and its masks by less."""
    from breastseg.nets.resunet import ResUNetConfig, build_resunet
    from breastseg.predict.slices import predict_batch

    torch.manual_seed(0)
    net = build_resunet(ResUNetConfig(depth=3, first_channels=8)).eval()
    x = np.random.default_rng(0).normal(size=(4, 2, 40, 48)).astype(np.float32)
    p32 = predict_batch([net], x, 4, "float32")
    p16 = predict_batch([net], x, 4, "bfloat16")
    assert p32.dtype == p16.dtype == np.float32 and p32.shape == (4, 40, 48)
    # bfloat16 keeps 8 mantissa bits (relative step 2**-8 ≈ 0.4 %): probabilities move by a few hundredths at most
    assert 0.0 < np.abs(p32 - p16).max() < 0.1
    assert np.mean((p32 > 0.5) == (p16 > 0.5)) > 0.98
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bfloat16" if native_bfloat16(cpu) else "float32")
    assert resolve_precision("float32", cpu) == "float32"
    with pytest.raises(InputError, match="precision 'half'"):
        resolve_precision("half", cpu)


def test_device_names() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="not a torch device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")
