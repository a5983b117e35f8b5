"""Losses (MONAI): the specimen study's Dice loss (without background, batch-wise, unknown pixels masked out), Dice +
cross-entropy, and the breast-MRI study's generalised Dice loss."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss, GeneralizedDiceLoss
from torch import nn
from torch.nn import functional as F

UNKNOWN_LABEL = 2


def specimen_dice_loss(unknown_label: int = UNKNOWN_LABEL) -> nn.Module:
    """MONAI ``DiceLoss`` on softmax outputs, foreground only, sums over the whole batch, and pixels labelled
    ``unknown_label`` removed from both prediction and target (after the softmax)."""
    return DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True, ignore_index=unknown_label)


class MaskedDiceCELoss(nn.Module):
    """The masked Dice loss of :func:`specimen_dice_loss` plus pixel-wise cross-entropy (equal weights), pixels
    labelled ``unknown_label`` left out of both. On data without unknown pixels it equals MONAI's ``DiceCELoss``
    (foreground Dice, batch-wise, mean cross-entropy). The cross-entropy term penalises every false-positive pixel
    on its own, where the Dice term weighs a thin ring of them against the whole tumour's overlap."""

    def __init__(self, unknown_label: int = UNKNOWN_LABEL) -> None:
        super().__init__()
        self.unknown_label = unknown_label
        self.dice = specimen_dice_loss(unknown_label)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = target[:, 0].long()
        if not bool((labels != self.unknown_label).any()):
            return self.dice(logits, target)
        return self.dice(logits, target) + F.cross_entropy(logits, labels, ignore_index=self.unknown_label)


def dice_ce_loss() -> nn.Module:
    """:class:`MaskedDiceCELoss`: foreground, batch-wise Dice plus pixel-wise cross-entropy (equal weights), unknown
    pixels left out of both."""
    return MaskedDiceCELoss()


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
