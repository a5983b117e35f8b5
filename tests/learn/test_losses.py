"""The specimen Dice loss masks unknown pixels out entirely (after the softmax); the MRI study's generalised Dice
loss is Sudre et al.'s formula."""

from __future__ import annotations

import pytest
import torch
from monai.losses import DiceCELoss, DiceLoss

from breastseg.learn.losses import dice_ce_loss, generalised_dice_ce_loss, generalised_dice_loss, specimen_dice_loss


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


def test_dice_ce_is_monais_without_unknown_pixels_and_ignores_them_in_both_terms() -> None:
    torch.manual_seed(2)
    logits = torch.randn(3, 2, 8, 10)
    target = (torch.rand(3, 1, 8, 10) > 0.6).long()
    monai_dice_ce = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
    assert torch.allclose(dice_ce_loss()(logits, target), monai_dice_ce(logits, target), atol=1e-6)
    masked_target = target.clone()
    masked_target[..., 5:] = 2
    wild = logits.clone()
    wild[..., 5:] = 50.0 * torch.randn_like(wild[..., 5:])
    # by hand: mean cross-entropy over the known pixels only, plus the masked Dice
    p = torch.softmax(logits[..., :5], dim=1)
    known = target[..., :5]
    ce = -torch.log(torch.gather(p, 1, known)).mean()
    expected = specimen_dice_loss()(logits[..., :5], known) + ce
    assert torch.allclose(dice_ce_loss()(wild, masked_target), expected, atol=1e-5)


def test_generalised_dice_loss_equals_sudres_formula_by_hand() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 2, 6, 7, 5)
    target = torch.zeros(2, 1, 6, 7, 5, dtype=torch.long)
    target[0, 0, 1:3, 2:4, 1:3] = 1  # a small tumour: 8 voxels against 412 of background
    p = torch.softmax(logits, dim=1).double()
    g = torch.cat([1 - target, target], dim=1).double()
    w = 1.0 / g.sum(dim=(0, 2, 3, 4)) ** 2  # per class, over the whole batch
    overlap = (p * g).sum(dim=(0, 2, 3, 4))
    total = (p + g).sum(dim=(0, 2, 3, 4))
    expected = 1.0 - 2.0 * (w * overlap).sum() / (w * total).sum()
    assert float(generalised_dice_loss()(logits, target)) == pytest.approx(float(expected), abs=1e-5)
    # inverse squared volumes: a perfect background with the tumour missed still costs nearly everything
    # (by hand: 1 − (2/412) / (832/412² + 8/8²) = 0.963), where an unweighted two-class Dice would give ≈ 0.5
    miss = torch.zeros_like(logits)
    miss[:, 0] = 20.0
    assert float(generalised_dice_loss()(miss, target)) == pytest.approx(
        1 - (2 / 412) / (832 / 412**2 + 1 / 8), abs=1e-4
    )


def test_generalised_dice_ce_adds_plain_cross_entropy_and_keeps_a_gradient_where_dice_alone_has_none() -> None:
    torch.manual_seed(2)
    logits = torch.randn(2, 2, 4, 5, 6)
    target = (torch.rand(2, 1, 4, 5, 6) > 0.8).long()
    p = torch.softmax(logits.double(), dim=1)[:, 1]
    t = target[:, 0].double()
    ce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()  # by hand, both classes
    expected = float(generalised_dice_loss()(logits, target)) + float(ce)
    assert float(generalised_dice_ce_loss()(logits, target)) == pytest.approx(expected, abs=1e-5)
    # the collapse the combination guards against: tumour probability ~0 everywhere (saturated softmax)
    dead = torch.zeros(1, 2, 4, 5, 6)
    dead[:, 0] = 30.0
    dead.requires_grad_(True)
    tumour = torch.zeros(1, 1, 4, 5, 6, dtype=torch.long)
    tumour[..., 1:3, 1:3, 1:3] = 1
    (g_dice,) = torch.autograd.grad(generalised_dice_loss()(dead, tumour), dead)
    (g_both,) = torch.autograd.grad(generalised_dice_ce_loss()(dead, tumour), dead)
    assert g_dice.abs().max() < 1e-9 < 1e-3 < g_both[:, 1][tumour[:, 0] > 0].abs().min()
