"""Network builders and a registry (kind → configuration class); nothing else lives here.

Every configuration is a frozen dataclass with ``build()`` (a fresh ``nn.Module`` taking ``(N, C, H, W)`` — or
``(N, C, z, y, x)`` for the 3D DynUNet — and returning two-class logits) and ``size_multiple`` (input sizes must be
multiples of it): the :class:`NetConfig` interface the trainer and the predictors use.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

import torch
from torch import nn

from breastseg.errors import ModelError
from breastseg.nets.dynunet import DynUNetConfig, plan_dynunet
from breastseg.nets.monai_unet import MonaiUNetConfig
from breastseg.nets.resunet import ResUNetConfig, build_resunet
from breastseg.nets.torchvision_seg import TorchvisionSegConfig, build_torchvision_seg
from breastseg.nets.valid_unet import ValidUNetConfig


class NetConfig(Protocol):
    """What the trainer and the predictors need of a network configuration."""

    @property
    def size_multiple(self) -> int: ...

    def build(self) -> nn.Module: ...


REGISTRY: dict[str, type] = {
    "resunet": ResUNetConfig,
    "torchvision": TorchvisionSegConfig,
    "dynunet": DynUNetConfig,
    "valid_unet": ValidUNetConfig,
    "monai_unet": MonaiUNetConfig,
}


def net_config_to_dict(config: NetConfig) -> dict[str, Any]:
    """``{"kind": …, **fields}`` for a model file."""
    for kind, cls in REGISTRY.items():
        if isinstance(config, cls):
            return {"kind": kind, **asdict(config)}  # type: ignore[call-overload]
    raise ModelError(f"not a registered network configuration: {type(config).__name__}")


def load_network(
    config: NetConfig, state_dict: dict[str, torch.Tensor], device: str | torch.device = "cpu"
) -> nn.Module:
    """The network of ``config`` with trained weights, on ``device``, in evaluation mode."""
    net = config.build()
    net.load_state_dict(state_dict)
    return net.to(device).eval()


def net_config_from_dict(doc: dict[str, Any]) -> NetConfig:
    """Inverse of :func:`net_config_to_dict`."""
    fields = dict(doc)
    kind = fields.pop("kind", "resunet")
    if kind not in REGISTRY:
        raise ModelError(f"unknown network kind {kind!r}; known: {', '.join(REGISTRY)}")
    try:
        config: NetConfig = REGISTRY[kind](**fields)
    except TypeError as exc:
        raise ModelError(f"network {kind}: bad fields ({exc})") from exc
    return config


__all__ = [
    "REGISTRY",
    "DynUNetConfig",
    "MonaiUNetConfig",
    "NetConfig",
    "ResUNetConfig",
    "TorchvisionSegConfig",
    "ValidUNetConfig",
    "build_resunet",
    "build_torchvision_seg",
    "load_network",
    "net_config_from_dict",
    "net_config_to_dict",
    "plan_dynunet",
]
