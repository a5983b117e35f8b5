"""End-to-end training on phantom lamellae, checkpoint resume, and the bundle's leakage guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from breastseg.errors import ModelError
from breastseg.learn.patches import PatchConfig
from breastseg.learn.trainer import TrainConfig, no_skill_dice, train, validation_dice
from breastseg.nets.resunet import ResUNetConfig
from breastseg.workflows.specimen.bundle import ModelBundle
from breastseg.workflows.specimen.train import to_train_images


def test_validation_dice_beats_no_skill(tiny_bundle: ModelBundle, phantom_lamellae: list) -> None:
    images = to_train_images(phantom_lamellae, tiny_bundle.normalisation)
    for member in tiny_bundle.members:
        val = [img for img in images if img.patient_id in member.validation_patients]
        baseline = no_skill_dice(val)
        assert member.best_validation_dice is not None
        assert member.best_validation_dice > baseline + 0.15, (member.fold, member.best_validation_dice, baseline)
        # the stored weights reproduce the stored score
        net = tiny_bundle.networks()[tiny_bundle.members.index(member)]
        assert validation_dice([net], val, tiny_bundle.net.size_multiple) == pytest.approx(member.best_validation_dice)


def test_members_never_validate_on_their_training_patients(tiny_bundle: ModelBundle) -> None:
    for m in tiny_bundle.members:
        assert not set(m.training_patients) & set(m.validation_patients)
    assert sorted(p for m in tiny_bundle.members for p in m.validation_patients) == tiny_bundle.card["patients"]


def test_bundle_round_trip_and_leakage_guard(tmp_path: Path, tiny_bundle: ModelBundle) -> None:
    path = tiny_bundle.save(tmp_path / "b.pt")
    back = ModelBundle.load(path)
    assert back.normalisation == tiny_bundle.normalisation and back.net == tiny_bundle.net
    x = torch.rand(1, 2, 32, 32)
    for a, b in zip(tiny_bundle.networks(), back.networks(), strict=True):
        assert torch.equal(a(x), b(x))
    # every member trained or validated on every patient of its own training pool: nothing independent is left
    with pytest.raises(ModelError, match="every member"):
        back.networks(exclude_patient=back.members[0].validation_patients[0])


def test_leakage_guard_drops_members_that_saw_the_patient(tiny_bundle: ModelBundle) -> None:
    bundle = ModelBundle(tiny_bundle.net, tiny_bundle.normalisation, list(tiny_bundle.members), tiny_bundle.card)
    bundle.members[0].training_patients = ("outsider", *bundle.members[0].training_patients)
    assert len(bundle.networks(exclude_patient="nobody")) == len(bundle.members)
    # "outsider" was used by member 0 only
    assert len(bundle.networks(exclude_patient="outsider")) == len(bundle.members) - 1
    bundle.members[0].training_patients = bundle.members[0].training_patients[1:]


def test_corrupt_bundle(tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_bytes(b"not a bundle")
    with pytest.raises(ModelError, match=r"x.pt: not a breastseg model bundle \(specimen Residual U-Net\)"):
        ModelBundle.load(tmp_path / "x.pt")


def test_checkpoint_resumes_where_it_stopped(tmp_path: Path, tiny_bundle: ModelBundle, phantom_lamellae: list) -> None:
    images = to_train_images(phantom_lamellae, tiny_bundle.normalisation)
    tr = [i for i in images if i.patient_id != "pt0"]
    va = [i for i in images if i.patient_id == "pt0"]
    net = ResUNetConfig(in_channels=2, depth=2, first_channels=4)
    cfg = TrainConfig(epochs=3, patch=PatchConfig(size=32, per_image=2), early_stopping_patience=99)
    full = train(net, tr, va, cfg, show_progress=False)
    ckpt = tmp_path / "ckpt.pt"
    # an "interrupted" run: 2 epochs, then the same configuration for 3 continues from epoch 2
    first = train(
        net,
        tr,
        va,
        TrainConfig(epochs=2, patch=cfg.patch, early_stopping_patience=99),
        checkpoint=ckpt,
        show_progress=False,
    )
    assert len(first.history) == 2
    saved = torch.load(ckpt, weights_only=False)
    saved["config"]["epochs"] = 3  # same run, longer budget
    torch.save(saved, ckpt)
    resumed = train(net, tr, va, cfg, checkpoint=ckpt, show_progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[:2] == first.history
    np.testing.assert_allclose([h["loss"] for h in resumed.history], [h["loss"] for h in full.history], rtol=1e-5)


def test_packaged_demo_bundle() -> None:
    from breastseg.workflows.specimen.pipeline import default_model_path

    path = default_model_path("resunet")
    assert path.stat().st_size <= 20 * 1024 * 1024
    bundle = ModelBundle.load(path)
    assert len(bundle.members) == 5 and bundle.normalisation.channels == ("ct", "pet")
    assert "not for clinical use" in bundle.card["data"] and "make demo-model" in bundle.card["data"]
    card = path.with_suffix(".card.md").read_text()
    assert "| member | validation patients | best validation Dice |" in card
    # the recipe of `make demo-model`, in the bundle and on its card
    train = bundle.card["training"]["train"]
    assert (train["loss"], train["patch"]["positive_bias"], train["epochs"]) == ("dice_ce", 0.1, 40)
    assert "* **Recipe**: dice_ce loss, 40 epochs at most, 5 folds, 96 px patches (10 % centred on tumour)" in card
    # every member validated on patients it never trained on
    for m in bundle.members:
        assert not set(m.training_patients) & set(m.validation_patients)


def test_transfer_learning_starts_from_the_base_members(tiny_bundle: ModelBundle, phantom_lamellae: list) -> None:
    """``--init-from``: each member fine-tunes its base member (same architecture and normalisation).

    With a vanishing learning rate the fine-tuned weights must stay the base member's; a network that ignored
    ``init_from`` would start from a fresh Kaiming initialisation instead.
    """
    import dataclasses

    from breastseg.workflows.specimen.train import ResUNetTraining, train_bundle

    # pretend the other half of the patients are ILC + DCIS: fine-tune on them alone
    others = [
        dataclasses.replace(s, tumour_type="ILC") for s in phantom_lamellae if s.patient_id in {"pt3", "pt4", "pt5"}
    ]
    spec = ResUNetTraining(
        inputs="petct",
        train=TrainConfig(epochs=1, learning_rate=1e-12, patch=PatchConfig(size=32, per_image=2)),
        folds=3,
    )
    tuned = train_bundle(others, spec, init_from=tiny_bundle, show_progress=False, description="ILC phantoms")
    assert tuned.net == tiny_bundle.net and tuned.normalisation == tiny_bundle.normalisation
    assert tuned.card["fine_tuned_from"] == tiny_bundle.card["data"] and tuned.card["tumour_types"] == ["ILC"]
    for base, member in zip(tiny_bundle.members, tuned.members, strict=True):
        for name, weight in base.state_dict.items():
            torch.testing.assert_close(member.state_dict[name], weight, rtol=1e-6, atol=1e-6)
        assert set(member.training_patients) <= {"pt3", "pt4", "pt5"}


def test_bundle_records_the_training_pixel_size_and_refuses_mixed_scales(
    tiny_bundle: ModelBundle, phantom_lamellae: list
) -> None:
    import dataclasses

    from breastseg.errors import InputError
    from breastseg.workflows.specimen.train import training_pixel_spacing

    assert tiny_bundle.pixel_spacing_mm == pytest.approx(phantom_lamellae[0].spacing[-1])
    mixed = [*phantom_lamellae[:2], dataclasses.replace(phantom_lamellae[2], spacing=(0.1, 0.1))]
    with pytest.raises(InputError, match="resample the lamellae"):
        training_pixel_spacing(mixed)


def test_progress_reports_every_epoch_and_a_log_shows_the_run(
    phantom_lamellae: list, tiny_bundle: ModelBundle, capsys: pytest.CaptureFixture
) -> None:
    """The epoch callback sees each epoch once, in order, with the history's numbers; without a terminal (a log,
    a pipe) the default progress prints lines on stderr, so a background run shows that it moves."""
    from breastseg.learn.trainer import EpochReport

    images = to_train_images(phantom_lamellae, tiny_bundle.normalisation)
    tr = [i for i in images if i.patient_id != "pt0"]
    va = [i for i in images if i.patient_id == "pt0"]
    net = ResUNetConfig(in_channels=2, depth=2, first_channels=4)
    cfg = TrainConfig(epochs=2, patch=PatchConfig(size=32, per_image=2), early_stopping_patience=99)
    reports: list[EpochReport] = []
    result = train(net, tr, va, cfg, progress=reports.append, description="tiny")
    assert [r.epoch for r in reports] == [1, 2] and all(r.epochs == 2 for r in reports)
    assert [r.loss for r in reports] == [h["loss"] for h in result.history]
    assert [r.validation_dice for r in reports] == [h["validation_dice"] for h in result.history]
    assert reports[-1].best == pytest.approx(result.best_validation_dice)
    assert capsys.readouterr().err == ""  # a callback given: nothing printed
    from breastseg.progress import Verbosity, set_verbosity

    train(net, tr, va, cfg, description="tiny")  # seconds of work: a log gets no line (breastseg.progress)
    assert capsys.readouterr().err == ""
    set_verbosity(Verbosity.VERBOSE)  # breastseg -v: every epoch, timestamped, with its loss
    try:
        train(net, tr, va, cfg, description="tiny")
    finally:
        set_verbosity(Verbosity.NORMAL)
    lines = capsys.readouterr().err.strip().splitlines()
    assert "] tiny: 1/2 (50 %), about" in lines[0] and "; loss " in lines[0]
    assert "] tiny: 2/2 (100 %), done in" in lines[-1] and "validation Dice" in lines[-1]
