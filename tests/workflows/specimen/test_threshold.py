"""The intensity-threshold baseline: the Dice sweep against brute force, known optima, model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.errors import ModelError
from breastseg.evaluation.metrics import dice
from breastseg.workflows.specimen import threshold as T


def test_dice_curve_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0, 50, 5000).round()
    truth = values + rng.normal(0, 40, 5000) > 30
    sweep = T.CT_SWEEP_HU
    curve = T.dice_curve(values, truth, sweep)
    for k in (0, 900, 1015, 1040, 1100, 2000):
        assert curve[k] == pytest.approx(dice(values >= sweep[k], truth)), sweep[k]


def _case(pid: str, tumour_hu: float, benign_hu: float, tumour_sul: float, benign_sul: float) -> T.ThresholdCase:
    label = np.zeros((20, 20), np.uint8)
    label[5:10, 5:10] = 1
    label[0:2, :] = 2  # unknown rows: must not count
    tissue = np.ones((20, 20), bool)
    ct = np.where(label == 1, tumour_hu, benign_hu).astype(np.float32)
    ct[0:2, :] = 500.0  # unknown pixels look like tumour; excluded, they cannot pull the threshold
    pet = np.where(label == 1, tumour_sul, benign_sul).astype(np.float32)
    return T.ThresholdCase(pid, [ct], [pet], [label], [tissue])


def test_fit_finds_the_separating_threshold() -> None:
    cases = [_case("a", 80, 20, 4.0, 1.0), _case("b", 90, 30, 5.0, 1.0)]
    ct = T.fit_threshold("ct", cases)
    # any threshold in (30, 80] separates both perfectly; the lowest of the sweep is kept
    assert ct.value == 32.0 and ct.mean_training_dice == 1.0
    pet = T.fit_threshold("pet", cases)
    # relative: tumour at 1.0 of max, benign at 0.25 (a) and 0.2 (b): the lowest perfect threshold is 0.255
    assert pet.value == pytest.approx(0.255) and pet.mean_training_dice == 1.0


def test_petct_gate_removes_dense_free_uptake() -> None:
    label = np.zeros((20, 20), np.uint8)
    label[5:10, 5:10] = 1
    ct = np.full((20, 20), -100.0, np.float32)  # fat
    ct[5:10, 5:10] = 70.0  # dense tumour
    ct[12:18, 12:18] = 40.0  # dense benign
    pet = np.where(label == 1, 4.0, 0.5).astype(np.float32)
    pet[14:16, 0:4] = 4.0  # hot fat, as hot as the tumour (not dense): the CT gate removes it
    case = T.ThresholdCase("p", [ct], [pet], [label], [np.ones((20, 20), bool)])
    assert T.fit_threshold("petct", [case]).mean_training_dice == 1.0
    assert T.fit_threshold("pet", [case]).mean_training_dice < 1.0


def test_model_round_trip_and_card(tmp_path: Path) -> None:
    cases = [_case(str(i), 80 + i, 20, 4.0, 1.0) for i in range(6)]
    model = T.fit_threshold_model("petct", cases, n_folds=5, data_description="unit test cases")
    assert len(model.folds) == 5
    assert all(len(f.training_patients) < 6 for f in model.folds)  # each fold leaves patients out
    path = model.save(tmp_path / "m.json")
    back = T.ThresholdModel.load(path)
    assert [f.value for f in back.folds] == [f.value for f in model.folds]
    card = (tmp_path / "m.card.md").read_text()
    assert "unit test cases" in card and "| fold | threshold |" in card
    doc = json.loads(path.read_text())
    assert doc["kind"] == T.MODEL_KIND and doc["input"] == "petct"


def test_fold_count_is_what_the_patients_allow_and_the_card_says_why() -> None:
    cases = [_case(str(i), 80 + i, 20, 4.0, 1.0) for i in range(3)]
    one = T.fit_threshold_model("ct", cases, n_folds=1)
    # one fold is fitted on every patient (not on the patients left after leaving all of them out)
    assert len(one.folds) == 1 and one.folds[0].training_patients == ("0", "1", "2")
    assert one.folds[0].mean_training_dice == 1.0
    assert one.card["folds_note"] == "1 fold as asked, fitted on all 3 patients"
    three = T.fit_threshold_model("ct", cases, n_folds=5)
    assert len(three.folds) == 3 and all(len(f.training_patients) == 2 for f in three.folds)
    assert three.card["folds_note"].startswith("3 folds instead of 5: only 3 patients")
    single = T.fit_threshold_model("ct", cases[:1], n_folds=5)
    assert len(single.folds) == 1 and "single patient" in single.card["folds_note"]


def test_ensemble_probability_is_the_fraction_of_folds() -> None:
    a = np.array([True, True, False])
    b = np.array([True, False, False])
    np.testing.assert_allclose(T.ensemble_probability([a, b]), [1.0, 0.5, 0.0])


def test_bad_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        T.ThresholdModel.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text('{"kind": "something else"}')
    with pytest.raises(ModelError, match="not a specimen threshold model"):
        T.ThresholdModel.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a readable"):
        T.ThresholdModel.load(tmp_path / "y.json")


def test_packaged_model_loads() -> None:
    from breastseg.workflows.specimen.pipeline import default_model_path

    model = T.ThresholdModel.load(default_model_path("threshold"))
    assert model.input == "petct" and len(model.folds) == 5
    assert 0.05 < model.folds[0].value < 0.95


def test_probability_maps_are_per_patient_min_max() -> None:
    ct = np.array([[-1000.0, -100.0, 0.0, 100.0]], np.float32)
    pet = np.array([[0.0, 1.0, 2.0, 4.0]], np.float32)
    tissue = np.array([[False, True, True, True]])
    fold = T.FittedThreshold(0.5, 1.0, ("a",))
    ct_prob = T.ThresholdModel("ct", [fold]).probability(ct, pet, tissue)
    np.testing.assert_allclose(ct_prob, [[0.0, 0.0, 0.5, 1.0]])  # tissue HU −100…100 → 0…1, outside 0
    pet_prob = T.ThresholdModel("pet", [fold]).probability(ct, pet, tissue)
    np.testing.assert_allclose(pet_prob, [[0.0, 0.25, 0.5, 1.0]])  # relative to the SUL maximum


def test_case_predictions_normalise_over_the_patients_slices() -> None:
    # two slices of one patient: the SUL maximum (8) is on slice 2, so slice 1's 4.0 is 0.5 relative
    tissue = np.array([[False, True, True, True]])
    ct = [np.array([[-1000.0, -100.0, 0.0, 100.0]], np.float32), np.array([[-1000.0, -50.0, 50.0, 300.0]], np.float32)]
    pet = [np.array([[9.0, 1.0, 2.0, 4.0]], np.float32), np.array([[0.0, 1.0, 2.0, 8.0]], np.float32)]
    label = [np.zeros((1, 4), np.uint8)] * 2
    case = T.ThresholdCase("p", ct, pet, label, [tissue, tissue])
    (m1, p1), (m2, p2) = T.case_predictions("pet", case, 0.25)
    np.testing.assert_allclose(p1, [[0.0, 0.125, 0.25, 0.5]])  # 9.0 lies outside the tissue: ignored
    np.testing.assert_allclose(p2, [[0.0, 0.125, 0.25, 1.0]])
    assert m1.tolist() == [[False, False, True, True]] and m2.tolist() == [[False, False, True, True]]
    # CT: absolute HU threshold; probability min-max over both slices' tissue (−100…300 HU)
    (c1, q1), (c2, q2) = T.case_predictions("ct", case, 40.0)
    assert c1.tolist() == [[False, False, False, True]] and c2.tolist() == [[False, False, True, True]]
    np.testing.assert_allclose(q1, [[0.0, 0.0, 0.25, 0.5]])
    np.testing.assert_allclose(q2, [[0.0, 0.125, 0.375, 1.0]])


def test_leakage_guard_leaves_out_thresholds_fitted_on_the_patient() -> None:
    folds = [T.FittedThreshold(0.3, 1.0, ("a", "b")), T.FittedThreshold(0.6, 1.0, ("b", "c"))]
    model = T.ThresholdModel("pet", folds)
    assert [f.value for f in model.independent_folds("a")] == [0.6]
    assert [f.value for f in model.independent_folds("z")] == [0.3, 0.6]
    pet = np.array([[0.0, 0.4, 1.0]], np.float32)
    tissue = np.ones((1, 3), bool)
    (only,) = model.masks(pet, pet, tissue, exclude_patient="a")
    assert only.tolist() == [[False, False, True]]  # the 0.6 threshold alone
    with pytest.raises(ModelError, match="every threshold"):
        model.independent_folds("b")


def test_pet_threshold_interval_bounds_a_blurred_edge_that_the_fitted_contour_overshoots() -> None:
    """A tumour block 2 mm below the surface, dense tissue of 0.2× its uptake around it, PET blurred 1 mm FWHM: the
    Dice-fitted contour (0.25 of the maximum) reaches 0.7 mm into the dense tissue and reads the margin too close;
    the contour halfway between the maximum and the surrounding tissue's uptake (0.6) lies on the blurred edge
    (a Gaussian-blurred step crosses its midpoint at the step), and the interval between them holds the true
    2 mm (to a voxel). Half the maximum would not: 0.5 lies outside the edge where the background is not 0."""
    from scipy import ndimage

    from breastseg.masks import depth_below_surface_mm
    from breastseg.workflows.specimen.margin import interval_from_masks, mask_margin_mm

    spacing = (0.1, 0.1, 0.1)
    tissue = np.zeros((70, 70, 80), bool)
    tissue[5:65, 5:65, 5:75] = True
    uptake = np.where(tissue, 0.2, 0.0)
    uptake[26:45, 26:45, 26:55] = 1.0  # 2 mm (20 voxels) of dense tissue between the tumour and every face
    blurred = ndimage.gaussian_filter(uptake, sigma=1.0 / 2.3548 / 0.1)
    depth = depth_below_surface_mm(tissue, spacing)
    truth = mask_margin_mm(tissue & (uptake == 1.0), depth)
    model = T.ThresholdModel("pet", [T.FittedThreshold(0.25, 0.9, ("a",)), T.FittedThreshold(0.26, 0.9, ("b",))])
    feature = model.feature(np.zeros_like(blurred), blurred, tissue)
    fitted = mask_margin_mm(model.masks(np.zeros_like(blurred), blurred, tissue)[0], depth)
    assert truth == pytest.approx(2.0, abs=0.11) and fitted is not None and fitted < truth - 0.2
    intervals = model.interval_masks(feature, tissue)
    assert intervals is not None
    wide, narrow, basis = intervals.wide, intervals.narrow, intervals.basis
    low, high = interval_from_masks(wide, narrow, depth, fitted)
    assert low == pytest.approx(fitted) and high is not None and low < truth <= high + 0.1
    level = float(basis.split(" / ")[1].split()[0])
    assert basis.startswith("tumour drawn at 0.25 (lowest fold threshold) / ") and level == pytest.approx(0.6, abs=0.01)
    half = mask_margin_mm(model.feature(np.zeros_like(blurred), blurred, tissue) >= 0.5, depth)
    assert half is not None and half < truth - 0.1
    assert T.ThresholdModel("ct", [T.FittedThreshold(40.0, 0.9, ("a",))]).interval_masks(feature, tissue) is None
