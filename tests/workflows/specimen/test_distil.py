"""Distilling the ResU-Net ensemble into one student: what it learns, where it is stored, when it runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.phantoms import write_phantom
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom
from breastseg.workflows.specimen import distil as D
from breastseg.workflows.specimen.bundle import ModelBundle
from breastseg.workflows.specimen.inference import model_inputs, predict_members
from breastseg.workflows.specimen.pipeline import AssessConfig, assess_specimen
from breastseg.workflows.specimen.preprocess import preprocess
from tests.workflows.specimen.conftest import phantom_pet_info

SMALL = {"ct_spacing_mm": 0.3, "pet_spacing_mm": 0.6, "specimen_size_mm": (20.0, 24.0, 30.0), "tumour_diameter_mm": 9.0}


def _pair(seed: int, margin_mm: float | None = 1.0):
    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=seed, margin_mm=margin_mm, **SMALL))
    return ph, preprocess(ph.images["ct"], ph.images["pet"], phantom_pet_info(ph))


@pytest.fixture(scope="module")
def teacher(tiny_bundle: ModelBundle) -> tuple[ModelBundle, list[D.TeacherVolume]]:
    pairs = [_pair(700 + i)[1] for i in range(2)]
    return tiny_bundle, D.teacher_volumes(tiny_bundle, [(p.ct, p.pet, p.tissue) for p in pairs])


def test_teacher_targets_are_the_members_mean_along_each_axis(teacher) -> None:
    bundle, volumes = teacher
    _, pair = _pair(700)
    inputs = model_inputs(pair.ct, pair.pet, pair.tissue, bundle.pixel_spacing_mm)
    from breastseg.workflows.specimen.inference import REFERENCE

    # independently: each member run along axis 1 only, then averaged by hand
    per_member = predict_members(bundle.ensemble(), inputs, dataclasses.replace(REFERENCE, axes=(1,)))
    by_hand = sum(per_member) / len(per_member)
    np.testing.assert_allclose(volumes[0].teacher[1], by_hand, atol=1e-6)
    assert volumes[0].teacher.shape == (3, *inputs.tissue.shape)
    assert volumes[0].teacher.min() >= 0.0 and volumes[0].teacher.max() <= 1.0


def test_batches_are_whole_padded_slices_mostly_through_the_uncertain_boundary(teacher) -> None:
    _, volumes = teacher
    cfg = D.DistilConfig(batch_size=4, boundary_fraction=1.0)
    sampler = D.SliceSampler(volumes, cfg, multiple=16)
    low, high = D.UNCERTAIN
    for _ in range(10):
        x, y = sampler.batch()
        assert x.shape[0] == y.shape[0] and x.shape[-2:] == y.shape[-2:] and x.shape[-1] % 16 == 0
        assert all(((t > low) & (t < high)).any() for t in y)  # every slice crosses the teacher's boundary


def test_the_student_learns_the_teacher(teacher) -> None:
    """After training, the student's per-axis probability is far closer to the teacher's than the best constant."""
    bundle, volumes = teacher
    cfg = D.DistilConfig(depth=3, first_channels=8, batch_size=8, steps=100, learning_rate=3e-3)
    state, _ = D.train_student(volumes, cfg, volumes[0].channels.shape[0])
    student = dataclasses.replace(bundle, student=D.student_member(bundle, state, cfg)).student_net()
    assert student is not None
    v = volumes[0]
    from breastseg.predict.slices import predict_triplanar

    pred = predict_triplanar([student.net], v.channels, student.size_multiple, axes=(0,), within=v.tissue)
    tissue = v.tissue
    target = v.teacher[0][tissue]
    mse_student = float(np.mean((pred[tissue] - target) ** 2))
    mse_constant = float(np.var(target))
    assert mse_student < 0.35 * mse_constant, (mse_student, mse_constant)


def test_a_bundle_keeps_its_student_and_the_guard_refuses_it_for_known_patients(tmp_path: Path, tiny_bundle) -> None:
    cfg = D.DistilConfig(depth=3, first_channels=8)
    first = tiny_bundle.members[0]
    member = D.student_member(tiny_bundle, dict(first.state_dict), cfg, ["extra-pt"])
    member = dataclasses.replace(member, net=tiny_bundle.member_net(first))  # the weights fit the members' net
    with_student = dataclasses.replace(tiny_bundle, student=member)
    with_student.save(tmp_path / "b.pt")
    tiny_bundle.save(tmp_path / "plain.pt")
    loaded = ModelBundle.load(tmp_path / "b.pt")
    assert loaded.student is not None and len(loaded.members) == len(tiny_bundle.members)
    seen = set(loaded.student.training_patients)
    assert {p for m in tiny_bundle.members for p in m.training_patients} | {"extra-pt"} == seen
    assert loaded.student_net("a-new-patient") is not None
    assert loaded.student_net(next(iter(seen))) is None and loaded.student_net("extra-pt") is None
    assert ModelBundle.load(tmp_path / "plain.pt").student is None
    # older readers refuse a bundle with a student (a schema they do not know) rather than drop it silently
    from breastseg.learn.model_file import read_model_file
    from breastseg.workflows.specimen.bundle import BUNDLE_KIND

    assert read_model_file(tmp_path / "b.pt", BUNDLE_KIND, "bundle")[0]["schema_version"] == 3
    assert read_model_file(tmp_path / "plain.pt", BUNDLE_KIND, "bundle")[0]["schema_version"] == 2


def test_distil_command_writes_a_student_that_assess_runs_and_exact_bypasses(tmp_path: Path, tiny_bundle) -> None:
    model = tiny_bundle.save(tmp_path / "ensemble.pt")
    rows = ["case_id,ct,pet,pet_info,patient_id"]
    for i in range(2):
        ph = make_specimen_phantom(SpecimenPhantomConfig(seed=720 + i, margin_mm=1.0, **SMALL))
        write_phantom(ph, tmp_path / f"s{i}")
        rows.append(f"s{i},s{i}/ct.nii.gz,s{i}/pet.nii.gz,s{i}/truth.json,dist{i}")
    (tmp_path / "specimens.csv").write_text("\n".join(rows) + "\n")
    argv = ["specimen", "distil", "--model", str(model), "--specimens", str(tmp_path / "specimens.csv")]
    argv += ["--out", str(tmp_path / "fast.pt"), "--depth", "3", "--channels", "8", "--steps", "20"]
    assert main(argv) == 0
    fast = ModelBundle.load(tmp_path / "fast.pt")
    assert fast.student is not None and "dist0" in fast.student.training_patients
    assert (
        fast.card["student"]["teacher_members"] == len(tiny_bundle.members) and fast.card["student"]["specimens"] == 2
    )

    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=730, margin_mm=1.0, **SMALL))
    info = phantom_pet_info(ph)
    fast_path = tmp_path / "fast.pt"
    student_run = assess_specimen(ph.images["ct"], ph.images["pet"], info, AssessConfig("resunet", str(fast_path)))
    assert student_run.result.model["inference_path"] == "distilled student"
    assert student_run.result.model["members_used"] is None
    assert student_run.result.margin.ensemble_positive_fraction is None  # no members voted
    # a patient the student learnt from: the members that did not see them run instead
    guarded = assess_specimen(
        ph.images["ct"], ph.images["pet"], info, AssessConfig("resunet", str(fast_path), patient_id="dist0")
    )
    assert guarded.result.model["inference_path"] == "ensemble"
    # --exact: every member, every slice, float32
    write_phantom(ph, tmp_path / "case")
    argv = ["specimen", "assess", "--ct", str(tmp_path / "case/ct.nii.gz"), "--pet", str(tmp_path / "case/pet.nii.gz")]
    argv += ["--pet-info", str(tmp_path / "case/truth.json"), "--method", "resunet", "--model", str(fast_path)]
    assert main([*argv, "--exact", "--out", str(tmp_path / "exact")]) == 0
    exact = json.loads((tmp_path / "exact" / "result.json").read_text())["model"]
    assert exact["inference_path"] == "ensemble" and exact["members_used"] == len(tiny_bundle.members)
    assert exact["slice_step"] == 1 and exact["precision"] == "float32"


def test_a_student_status_the_band_could_change_is_decided_by_the_members(tmp_path: Path, tiny_bundle) -> None:
    """A band near 0.5 unsettles any status (the mask at 0.01 reaches the surface, the one at 0.99 does not): the
    members then run at the exact settings and say so; a band of 0 always takes the student's status."""
    first = tiny_bundle.members[0]
    student = D.student_member(tiny_bundle, dict(first.state_dict), D.DistilConfig(depth=3, first_channels=8))
    student = dataclasses.replace(student, net=tiny_bundle.member_net(first))
    path = dataclasses.replace(tiny_bundle, student=student).save(tmp_path / "b.pt")
    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=731, margin_mm=1.0, **SMALL))
    info = phantom_pet_info(ph)

    def run(band: float):
        inference = dataclasses.replace(AssessConfig().inference, confirm_band=band)
        cfg = AssessConfig("resunet", str(path), inference=inference)
        return assess_specimen(ph.images["ct"], ph.images["pet"], info, cfg).result.model

    decided = run(0.49)
    assert decided["student_status_settled"] is False
    from breastseg.workflows.specimen.result import describe_networks

    n = len(tiny_bundle.members)
    assert (
        describe_networks(decided)
        == f"{n} of {n} members, exact settings (the student's status changed within probability 0.5 ± 0.49)"
    )
    assert decided["inference_path"] == "ensemble, deciding for the student"
    assert decided["members_used"] == len(tiny_bundle.members)
    assert decided["slice_step"] == 1 and decided["precision"] == "float32"
    taken = run(0.0)
    assert taken["inference_path"] == "distilled student" and taken["student_status_settled"] is None
    assert describe_networks(taken) == f"distilled student of {n} members"
    assert describe_networks({"path": "thresholds.json"}) is None  # the threshold method
    with pytest.raises(ValueError, match="confirm_band"):
        dataclasses.replace(AssessConfig().inference, confirm_band=0.5)
