"""The network interface: every registered network maps (N, C, H, W) to two-class logits of the same size, round
trips through a model file's dict, and loads backbone weights only from a local file the user gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from breastseg.errors import ModelError
from breastseg.nets import ResUNetConfig, TorchvisionSegConfig, net_config_from_dict, net_config_to_dict
from breastseg.nets.torchvision_seg import ARCHS


@pytest.mark.parametrize("arch", ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50"])
def test_torchvision_networks_give_logits_the_size_of_the_input(arch: str) -> None:
    net = TorchvisionSegConfig(arch).build().eval()  # type: ignore[arg-type]
    with torch.no_grad():
        out = net(torch.rand(2, 1, 96, 64))
    assert out.shape == (2, 2, 96, 64) and torch.isfinite(out).all()


def test_the_study_networks_are_available() -> None:
    assert {"fcn_resnet101", "deeplabv3_resnet101"} <= set(ARCHS)


def test_config_round_trip() -> None:
    for config in (ResUNetConfig(depth=3, first_channels=8, in_channels=1), TorchvisionSegConfig("fcn_resnet101")):
        doc = net_config_to_dict(config)
        assert net_config_from_dict(doc) == config
    with pytest.raises(ModelError, match="unknown network kind"):
        net_config_from_dict({"kind": "transformer"})


def test_backbone_weights_from_a_local_file(tmp_path: Path) -> None:
    donor = TorchvisionSegConfig("lraspp_mobilenet_v3_large").build()
    state = {
        k: torch.full_like(v, 0.125) if v.is_floating_point() else v
        for k, v in donor.model.backbone.state_dict().items()
    }
    path = tmp_path / "backbone.pth"
    torch.save(state, path)
    net = TorchvisionSegConfig("lraspp_mobilenet_v3_large", backbone_weights=str(path)).build()
    loaded = net.model.backbone.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    torch.save({"something": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(ModelError, match="no tensor matches"):
        TorchvisionSegConfig("lraspp_mobilenet_v3_large", backbone_weights=str(tmp_path / "wrong.pth")).build()


def test_the_command_line_lists_every_torchvision_network() -> None:
    from breastseg.cli.ultrasound import ARCHS as CLI_ARCHS

    assert CLI_ARCHS == ARCHS


def test_monai_unet_keeps_the_size_and_round_trips() -> None:
    from breastseg.nets import MonaiUNetConfig

    config = MonaiUNetConfig()
    assert config.axis_multiples() == (2, 16, 16)  # through-plane stride only at the second transition
    assert 4.0e6 < sum(p.numel() for p in config.build().parameters()) < 5.5e6
    small = MonaiUNetConfig(in_channels=4, channels=(4, 8, 16, 32, 64))
    with torch.no_grad():
        out = small.build().eval()(torch.zeros(1, 4, 4, 32, 48))
    assert tuple(out.shape) == (1, 2, 4, 32, 48)
    assert net_config_from_dict(net_config_to_dict(small)) == small
