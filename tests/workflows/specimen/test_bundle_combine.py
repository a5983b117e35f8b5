"""Combining fold bundles into one ensemble whose members keep their own network and normalisation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from breastseg.errors import ModelError
from breastseg.nets.resunet import ResUNetConfig, build_resunet
from breastseg.workflows.specimen.bundle import BundleMember, ModelBundle, combine_bundles
from breastseg.workflows.specimen.normalisation import Normalisation
from breastseg.workflows.specimen.pipeline import default_model_path


def _bundle(depth: int, channels: int, ct_low: float, patients: list[str], seed: int) -> ModelBundle:
    cfg = ResUNetConfig(in_channels=2, depth=depth, first_channels=channels)
    members = []
    for k, held_out in enumerate(patients):
        torch.manual_seed(seed + k)
        members.append(
            BundleMember(
                build_resunet(cfg).state_dict(), tuple(p for p in patients if p != held_out), (held_out,), f"f{k}"
            )
        )
    return ModelBundle(cfg, Normalisation(("ct", "pet"), ct_low, ct_low + 100.0), members, {})


def test_combined_members_keep_their_architecture_and_normalisation(tmp_path: Path) -> None:
    a = _bundle(2, 4, -50.0, ["p1", "p2"], 0)
    b = _bundle(3, 8, 10.0, ["p3", "p4"], 10)
    combined = ModelBundle.load(combine_bundles([a, b], {"model": "test"}).save(tmp_path / "c.pt"))
    ensemble = combined.ensemble()
    assert [e.size_multiple for e in ensemble] == [2, 2, 4, 4]  # 2 ** (depth - 1)
    assert [e.normalisation.ct_low_hu for e in ensemble] == [-50.0, -50.0, 10.0, 10.0]
    # each loaded member computes exactly what its source network computes
    x = torch.rand(1, 2, 16, 16)
    for e, (src, m) in zip(ensemble, [(a, m) for m in a.members] + [(b, m) for m in b.members], strict=True):
        ref = build_resunet(src.net)
        ref.load_state_dict(m.state_dict)
        ref.eval()
        assert torch.equal(e.net(x), ref(x))
    # the leakage guard works per member across the folds
    assert len(combined.ensemble(exclude_patient="p1")) == 2  # b's two members never saw p1
    assert "Members carry their own architectures" in (tmp_path / "c.card.md").read_text()


def test_combining_different_inputs_is_refused() -> None:
    a = _bundle(2, 4, 0.0, ["p1", "p2"], 0)
    b = dataclasses.replace(a, normalisation=Normalisation(("pet",), 0.0, 1.0))
    with pytest.raises(ModelError, match="different inputs"):
        combine_bundles([a, b], {})


def test_schema_1_bundles_still_load() -> None:
    bundle = ModelBundle.load(default_model_path("resunet"))  # the packaged demo bundle predates schema 2
    assert all(m.net is None and m.normalisation is None for m in bundle.members)
    ensemble = bundle.ensemble()
    assert len(ensemble) == len(bundle.members)
    assert all(e.normalisation == bundle.normalisation for e in ensemble)


def test_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    bundle = _bundle(2, 4, 0.0, ["p1", "p2"], 0)
    path = bundle.save(tmp_path / "b.pt")
    payload = torch.load(path, weights_only=True)
    payload["header"] = payload["header"].replace('"schema_version": 2', '"schema_version": 99')
    torch.save(payload, path)
    with pytest.raises(ModelError, match="newer than this breastseg"):
        ModelBundle.load(path)


def test_pixel_spacing_is_saved_and_combining_refuses_different_scales(tmp_path: Path) -> None:
    a = dataclasses.replace(_bundle(2, 4, -50.0, ["p1", "p2"], 0), pixel_spacing_mm=0.2)
    b = dataclasses.replace(_bundle(2, 4, -50.0, ["p3", "p4"], 1), pixel_spacing_mm=0.2)
    assert ModelBundle.load(a.save(tmp_path / "a.pt")).pixel_spacing_mm == 0.2
    assert combine_bundles([a, b], {}).pixel_spacing_mm == 0.2
    with pytest.raises(ModelError, match="pixel spacings"):
        combine_bundles([a, dataclasses.replace(b, pixel_spacing_mm=0.1)], {})
