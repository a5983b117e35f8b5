"""torchvision's semantic-segmentation networks, as the ultrasound study names them, behind our network interface.

Yao et al. 2026 compare FCN-ResNet101 and DeepLabV3-ResNet101; ResNet-50 and MobileNetV3-Large versions are the
lighter backbones that train on a CPU. Our networks take ``(N, C, H, W)`` and return two-class logits
``(N, 2, H, W)``: the wrapper repeats a grayscale channel to the three channels the backbones expect (so ImageNet
weights fit), and returns the main head's output (torchvision returns a dict; its auxiliary FCN head is off).

Weights: random by default (torchvision's initialisation). ``backbone_weights`` names a local file of ImageNet
backbone weights (e.g. torchvision's ``resnet101-63fe2227.pth``) that the user provides; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from breastseg.errors import ModelError

Arch = Literal[
    "fcn_resnet101",
    "fcn_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
]
ARCHS: tuple[str, ...] = Arch.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TorchvisionSegConfig:
    """A torchvision segmentation network.

    Attributes:
        arch: one of :data:`ARCHS`.
        in_channels: input channels (1 for ultrasound: repeated to the backbone's 3).
        out_channels: classes (2: background, lesion).
        backbone_weights: optional local file of ImageNet weights for the backbone (a state dict).
    """

    arch: Arch = "deeplabv3_mobilenet_v3_large"
    in_channels: int = 1
    out_channels: int = 2
    backbone_weights: str | None = None

    @property
    def size_multiple(self) -> int:
        """Input sizes must be multiples of this (the backbones reduce by up to 32; outputs are upsampled)."""
        return 32

    def build(self) -> nn.Module:
        return build_torchvision_seg(self)


class SegmentationLogits(nn.Module):
    """Wraps a torchvision segmentation model: channel repetition in, the ``"out"`` logits out."""

    def __init__(self, model: nn.Module, in_channels: int) -> None:
        super().__init__()
        self.model = model
        self.repeat = 3 // in_channels if in_channels in (1, 3) else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.repeat > 1:
            x = x.repeat(1, self.repeat, 1, 1)
        out: torch.Tensor = self.model(x)["out"]
        return out


def build_torchvision_seg(config: TorchvisionSegConfig) -> nn.Module:
    """The configured network, randomly initialised unless ``backbone_weights`` names a local file."""
    from torchvision.models import segmentation  # torchvision takes seconds to import: only when a network is built

    if config.arch not in ARCHS:
        raise ModelError(f"unknown torchvision segmentation network {config.arch!r}; choose from {', '.join(ARCHS)}")
    if config.in_channels not in (1, 3):
        raise ModelError(f"{config.arch}: takes 1 (grayscale, repeated) or 3 input channels, not {config.in_channels}")
    model = getattr(segmentation, config.arch)(
        weights=None, weights_backbone=None, num_classes=config.out_channels, aux_loss=False
    )
    if config.backbone_weights:
        path = Path(config.backbone_weights)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"{path}: cannot read backbone weights ({exc})") from exc
        own = set(model.backbone.state_dict())
        if not own & set(state):  # MobileNetV3 ImageNet files name the backbone's layers 'features.N…'
            state = {k.removeprefix("features."): v for k, v in state.items()}
        if not own & set(state):
            raise ModelError(f"{path}: no tensor matches the {config.arch} backbone (wrong file?)")
        # an ImageNet checkpoint's classifier ('fc.*', 'classifier.*') is not part of the backbone
        model.backbone.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return SegmentationLogits(model, config.in_channels)
