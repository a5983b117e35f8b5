"""The specimen Dice loss masks unknown pixels out entirely (after the softmax)."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss

from breastseg.learn.losses import specimen_dice_loss


def test_unknown_pixels_do_not_change_the_loss() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 8, 10)
    target = (torch.rand(3, 1, 8, 10) > 0.6).long()
    # the right half of every image is unknown: its logits and labels must not matter
    masked_target = target.clone()
    masked_target[..., 5:] = 2
    wild = logits.clone()
    wild[..., 5:] = 50.0 * torch.randn_like(wild[..., 5:])
    ours = specimen_dice_loss()(wild, masked_target)
    reference = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)(
        logits[..., :5], target[..., :5]
    )
    assert torch.allclose(ours, reference, atol=1e-6)
