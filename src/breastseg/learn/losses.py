"""Losses: the specimen study's Dice loss (MONAI), without background, batch-wise, unknown pixels masked out."""

from __future__ import annotations

from monai.losses import DiceCELoss, DiceLoss
from torch import nn

UNKNOWN_LABEL = 2


def specimen_dice_loss(unknown_label: int = UNKNOWN_LABEL) -> nn.Module:
    """MONAI ``DiceLoss`` on softmax outputs, foreground only, sums over the whole batch, and pixels labelled
    ``unknown_label`` removed from both prediction and target (after the softmax)."""
    return DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True, ignore_index=unknown_label)


def dice_ce_loss() -> nn.Module:
    """MONAI ``DiceCELoss``: the same foreground, batch-wise Dice plus pixel-wise cross-entropy (equal weights);
    for data without unknown pixels (ultrasound)."""
    return DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
