"""The plain-PyTorch ResU-Net is MONAI's UNet: same parameter names (strict load) and the same outputs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from breastseg.nets.resunet import ResUNetConfig, build_resunet
from breastseg.nets.resunet_torch import PlainResUNet

CASES = [
    ResUNetConfig(in_channels=2, depth=4, first_channels=8),
    ResUNetConfig(in_channels=1, depth=5, first_channels=4, kernel_size=5, norm="batch", dropout=0.2),
    ResUNetConfig(in_channels=2, depth=3, first_channels=6, norm="layer", num_res_units=1),
    ResUNetConfig(in_channels=2, depth=3, first_channels=8, norm="group", num_res_units=3),
    ResUNetConfig(in_channels=1, depth=3, first_channels=4, spatial_dims=3),
]


def _randomised(net: torch.nn.Module, seed: int) -> None:
    """Every parameter and buffer random, so a swapped PReLU, norm affine or running statistic shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*net.named_parameters(), *net.named_buffers()]:
            if t.dtype.is_floating_point:
                values = (
                    torch.rand(t.shape, generator=g) if "running_var" in name else torch.randn(t.shape, generator=g)
                )
                t.copy_(values * (0.5 if t.ndim > 1 else 1.0) + (0.5 if "running_var" in name else 0.0))


@pytest.mark.parametrize("config", CASES, ids=lambda c: f"d{c.depth}-k{c.kernel_size}-{c.norm}-r{c.num_res_units}")
def test_same_parameters_and_same_output_as_monai(config: ResUNetConfig) -> None:
    monai_net = build_resunet(config)
    _randomised(monai_net, seed=config.depth)
    plain = PlainResUNet(config)
    assert list(plain.state_dict()) == list(monai_net.state_dict())  # names and order
    plain.load_state_dict(monai_net.state_dict(), strict=True)
    monai_net.eval()
    plain.eval()
    size = [2 * config.size_multiple] * config.spatial_dims
    size[-1] += config.size_multiple  # not square
    x = torch.randn(3, config.in_channels, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = monai_net(x), plain(x)
    assert got.shape == want.shape == (3, config.out_channels, *size)
    scale = float(want.abs().max())
    assert scale > 0.1
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * scale)


def test_the_config_builds_the_plain_network() -> None:
    config = ResUNetConfig(depth=3, first_channels=4)
    assert isinstance(config.build_plain(), PlainResUNet)
    with pytest.raises(ValueError, match="residual units"):
        PlainResUNet(ResUNetConfig(num_res_units=0))


def test_running_a_packaged_bundle_imports_no_monai() -> None:
    """The start-up saving is the point: loading a bundle and predicting must not pull MONAI (or torchvision) in."""
    code = """
import sys
import numpy as np
from breastseg.workflows.specimen.pipeline import default_model_path
from breastseg.workflows.specimen.bundle import ModelBundle
from breastseg.predict.slices import predict_triplanar
bundle = ModelBundle.load(default_model_path("resunet"))
member = bundle.ensemble()[0]
x = np.zeros((len(bundle.normalisation.channels), 8, 16, 16), np.float32)
p = predict_triplanar([member.net], x, member.size_multiple)
assert p.shape == (8, 16, 16)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("monai", "torchvision"))
print(leaked[:5])
sys.exit(1 if leaked else 0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
