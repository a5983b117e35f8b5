"""Losses (MONAI): the specimen study's Dice loss (without background, batch-wise, unknown pixels masked out), Dice +
cross-entropy, and the breast-MRI study's generalised Dice loss."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss, DiceLoss, GeneralizedDiceLoss
from torch import nn
from torch.nn import functional as F

UNKNOWN_LABEL = 2


def specimen_dice_loss(unknown_label: int = UNKNOWN_LABEL) -> nn.Module:
    """MONAI ``DiceLoss`` on softmax outputs, foreground only, sums over the whole batch, and pixels labelled
    ``unknown_label`` removed from both prediction and target (after the softmax)."""
    return DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True, ignore_index=unknown_label)


def dice_ce_loss() -> nn.Module:
    """MONAI ``DiceCELoss``: the same foreground, batch-wise Dice plus pixel-wise cross-entropy (equal weights);
    for data without unknown pixels (ultrasound)."""
    return DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)


def generalised_dice_loss() -> nn.Module:
    """MONAI ``GeneralizedDiceLoss`` (Sudre et al. 2017) over both classes, batch-wise:
    ``1 − 2 Σ_c w_c Σ p·g / Σ_c w_c Σ (p + g)`` with ``w_c = 1 / (Σ g_c)²`` — the small tumour class weighs as much
    as the large background (the breast-MRI study's loss)."""
    return GeneralizedDiceLoss(include_background=True, to_onehot_y=True, softmax=True, batch=True)


class GeneralisedDiceCELoss(nn.Module):
    """The generalised Dice loss plus voxel-wise cross-entropy (equal weights). On patches the tumour class weight
    ``1 / (Σ g)²`` makes every false-positive voxel as costly as a missed tumour voxel, and generalised Dice alone
    drives the tumour probability to zero everywhere, where the softmax saturates and learning stops (seen on the
    MRI phantoms within three epochs); the cross-entropy term keeps a gradient on every voxel."""

    def __init__(self) -> None:
        super().__init__()
        self.dice = generalised_dice_loss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice(logits, target) + F.cross_entropy(logits, target[:, 0].long())


def generalised_dice_ce_loss() -> nn.Module:
    """:class:`GeneralisedDiceCELoss`."""
    return GeneralisedDiceCELoss()
