"""Ultrasound training through the project's one trainer, the model file, and prediction on the image's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from breastseg.errors import ModelError
from breastseg.evaluation.metrics import dice
from breastseg.learn.trainer import TrainConfig, no_skill_dice, validation_dice
from breastseg.nets import ResUNetConfig, TorchvisionSegConfig
from breastseg.workflows.ultrasound.dataset import UltrasoundCase, load_case, read_busi
from breastseg.workflows.ultrasound.model import (
    UltrasoundModel,
    predict_probability,
    resize_mask,
    train_fold,
    training_image,
    ultrasound_patches,
)
from tests.workflows.ultrasound.conftest import save_png, speckle_scene

SIZE = 64


@pytest.fixture(scope="module")
def lesion_cases(tmp_path_factory: pytest.TempPathFactory) -> list[UltrasoundCase]:
    """26 synthetic 'benign' scenes of varying size, each with one dark lesion somewhere."""
    root = tmp_path_factory.mktemp("us")
    rng = np.random.default_rng(5)
    for i in range(26):
        h, w = int(rng.integers(90, 130)), int(rng.integers(110, 170))
        r = int(rng.integers(10, 22))
        lesion = (int(rng.integers(r + 5, h - r - 5)), int(rng.integers(r + 5, w - r - 5)), r)
        image, mask = speckle_scene(300 + i, shape=(h, w), lesion=lesion)
        save_png(image, root / "benign" / f"benign ({i}).png")
        save_png(mask, root / "benign" / f"benign ({i})_mask.png")
    return read_busi(root)


def test_resize_mask_keeps_the_area() -> None:
    mask = np.zeros((200, 300), bool)
    mask[50:130, 40:200] = True
    small = resize_mask(mask, (64, 64))
    assert abs(small.mean() - mask.mean()) < 0.01


def test_a_small_network_learns_the_lesions_and_round_trips(tmp_path: Path, lesion_cases: list) -> None:
    train_cases, val_cases = lesion_cases[:20], lesion_cases[20:]
    net = ResUNetConfig(in_channels=1, depth=3, first_channels=8)
    cfg = TrainConfig(epochs=25, batch_size=4, learning_rate=0.02, patch=ultrasound_patches(SIZE), seed=0)
    result = train_fold(train_cases, val_cases, net, cfg, input_size=SIZE)
    baseline = no_skill_dice([training_image(c, SIZE) for c in val_cases])
    assert result.best_validation_dice > baseline + 0.3, (result.best_validation_dice, baseline)

    model = UltrasoundModel(net, result.state_dict, SIZE, {"title": "test model", "data": "synthetic"})
    path = model.save(tmp_path / "us.pt")
    assert "synthetic" in path.with_suffix(".card.md").read_text()
    loaded = UltrasoundModel.load(path)
    image, mask = load_case(val_cases[0])
    p1 = predict_probability([model.network()], image, SIZE)
    p2 = predict_probability([loaded.network()], image, loaded.input_size)
    assert p1.shape == image.shape
    np.testing.assert_array_equal(p1, p2)
    assert dice(p1 >= 0.5, mask) > 0.5  # on the image's own grid


def test_torchvision_networks_train_through_the_same_trainer(lesion_cases: list) -> None:
    cfg = TrainConfig(epochs=2, batch_size=4, patch=ultrasound_patches(SIZE), early_stopping_patience=5)
    result = train_fold(
        lesion_cases[:6], lesion_cases[6:8], TorchvisionSegConfig("lraspp_mobilenet_v3_large"), cfg, SIZE
    )
    assert len(result.history) == 2 and all(np.isfinite(h["loss"]) for h in result.history)
    assert any(
        not torch.equal(v, w)
        for v, w in zip(
            result.state_dict.values(),
            TorchvisionSegConfig("lraspp_mobilenet_v3_large").build().state_dict().values(),
            strict=True,
        )
        if v.is_floating_point()
    )


def test_bad_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such ultrasound model"):
        UltrasoundModel.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a breastseg ultrasound model"):
        UltrasoundModel.load(tmp_path / "junk.pt")


def test_final_model_trains_fixed_epochs_and_keeps_the_last(lesion_cases: list) -> None:
    from breastseg.workflows.ultrasound.model import train_final

    cfg = TrainConfig(epochs=3, batch_size=4, patch=ultrasound_patches(SIZE), early_stopping_patience=1)
    result = train_final(lesion_cases[:6], ResUNetConfig(in_channels=1, depth=3, first_channels=4), cfg, SIZE)
    assert result.best_epoch == 3 and len(result.history) == 3  # no early stop without validation
    assert np.isnan(result.best_validation_dice)


class _LeftRightRamp(torch.nn.Module):
    """A 'network' blind to its input whose tumour logit rises from left to right: it sees no symmetry, so a
    flip-averaged prediction must be the mean of the ramp and its mirror image."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ramp = torch.linspace(-3.0, 3.0, w).expand(n, h, w) * self.scale
        return torch.stack([torch.zeros_like(ramp), ramp], dim=1)


def test_flip_averages_the_mirrored_prediction() -> None:
    image = np.full((64, 64), 100.0, np.float32)
    plain = predict_probability([_LeftRightRamp()], image, 64)
    flipped = predict_probability([_LeftRightRamp()], image, 64, flip=True)
    sigmoid = 1.0 / (1.0 + np.exp(-np.linspace(-3.0, 3.0, 64)))
    assert np.allclose(plain[10], sigmoid, atol=1e-5)  # softmax of (0, t) is the sigmoid of t
    # sigmoid(t) + sigmoid(-t) = 1: the mirrored average is 0.5 everywhere
    assert np.allclose(flipped, 0.5, atol=1e-5)


def test_poly_schedule_in_bfloat16_learns_and_keeps_the_last_epoch(lesion_cases: list) -> None:
    """nnU-Net's poly learning rate, by hand; the last epoch is the model (its validation Dice is what is
    reported); bfloat16 autocast training still learns the lesions."""
    train_cases, val_cases = lesion_cases[:20], lesion_cases[20:]
    net = ResUNetConfig(in_channels=1, depth=3, first_channels=8)
    epochs = 20
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=4,
        learning_rate=0.02,
        patch=ultrasound_patches(SIZE),
        early_stopping_patience=1,  # ignored by the poly schedule
        schedule="poly",
        precision="bfloat16",
    )
    result = train_fold(train_cases, val_cases, net, cfg, input_size=SIZE)
    lrs = [h["learning_rate"] for h in result.history]
    assert lrs == pytest.approx([0.02 * (1 - e / epochs) ** 0.9 for e in range(epochs)])
    assert result.best_epoch == epochs
    validation = [training_image(c, SIZE) for c in val_cases]
    kept = UltrasoundModel(net, result.state_dict, SIZE).network()
    assert result.best_validation_dice == pytest.approx(result.history[-1]["validation_dice"])
    assert validation_dice([kept], validation, 32) == pytest.approx(result.best_validation_dice)
    assert result.best_validation_dice > no_skill_dice(validation) + 0.3
