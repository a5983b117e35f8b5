"""The whole-body PET/CT phantom: deterministic, anatomically placed, SUV-calibrated, with a follow-up whose
rigid misalignment and designed PERCIST response are recoverable from the images."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.phantoms.wholebody import WholeBodyPhantomConfig, make_wholebody_pair
from breastseg.workflows.petct.biomarkers import compute_biomarkers
from breastseg.workflows.petct.response import liver_reference, percist

COARSE = {"ct_spacing_mm": (4.0, 4.0, 4.0), "pet_spacing_mm": (6.0, 6.0, 6.0)}


@pytest.fixture(scope="module")
def pairs() -> dict[str, dict]:
    responses = ("PMR", "SMD", "PMD", "CMR")
    return {r: make_wholebody_pair(WholeBodyPhantomConfig(seed=7, response=r, **COARSE)) for r in responses}


def _suv(phantom) -> tuple[np.ndarray, np.ndarray]:
    pet = phantom.images["pet"]
    return pet.array * phantom.truth["pet"]["suvbw_per_bqml"], pet.array * phantom.truth["pet"]["sul_per_bqml"]


def test_deterministic_and_anatomical(pairs: dict) -> None:
    again = make_wholebody_pair(WholeBodyPhantomConfig(seed=7, response="PMR", **COARSE))
    base = pairs["PMR"]["baseline"]
    np.testing.assert_array_equal(again["baseline"].images["pet"].array, base.images["pet"].array)
    np.testing.assert_array_equal(again["followup"].images["ct"].array, pairs["PMR"]["followup"].images["ct"].array)
    pet, ct = base.images["pet"], base.images["ct"]
    liver = base.images["liver"].array > 0
    centroid = pet.grid.index_to_world(np.argwhere(liver).mean(axis=0))
    assert centroid[0] < -30  # LPS: the liver lies on the patient's right (negative x)
    bone = base.images["bone"].array > 0
    assert pet.grid.index_to_world(np.argwhere(bone).mean(axis=0))[1] > 0  # the skeleton is posterior on average
    # CT: air outside, lungs, cortical bone
    assert ct.array[0, 0, 0] < -900 and np.percentile(ct.array, 99.9) > 600
    # SUV: soft tissue about 0.9, bladder the hottest organ, lesions at their design SUV (centre, little blur)
    suv, _ = _suv(base)
    body_median = np.median(suv[(suv > 0.5) & (suv < 1.3)])
    assert body_median == pytest.approx(0.9, abs=0.1)
    labels = base.images["lesions"].array
    for lesion in base.truth["lesions"]:
        inside = labels == lesion["label"]
        assert inside.sum() * pet.grid.voxel_volume_mm3 / 1000 == pytest.approx(lesion["volume_ml"])
        assert np.percentile(suv[inside], 90) == pytest.approx(lesion["suvbw"], rel=0.25)
    assert base.truth["lesion_count"] == 6 and len(np.unique(labels)) == 7  # six separate lesions


def test_followup_misalignment_is_the_recorded_rigid_transform(pairs: dict) -> None:
    pair = pairs["SMD"]  # same lesions at both times
    transform = pair["baseline"].truth["followup_to_baseline"]
    rotation, shift = np.asarray(transform["R"]), np.asarray(transform["t_mm"])
    for label in range(1, 7):
        points = {}
        for tp in ("baseline", "followup"):
            image = pair[tp].images["lesions"]
            points[tp] = image.grid.index_to_world(np.argwhere(image.array == label).mean(axis=0))
        mapped = rotation @ (points["followup"] - shift)
        assert np.linalg.norm(mapped - points["baseline"]) < 3.0  # half a 6 mm PET voxel
        assert np.linalg.norm(points["followup"] - points["baseline"]) > 3.0  # the misalignment is real


@pytest.mark.parametrize("response", ["PMR", "SMD", "PMD", "CMR"])
def test_percist_on_the_images_gives_the_designed_response(pairs: dict, response: str) -> None:
    results = {}
    for tp, phantom in pairs[response].items():
        suv, sul = _suv(phantom)
        lesions = phantom.images["lesions"].array > 0
        spacing = phantom.images["pet"].spacing
        markers = compute_biomarkers(suv, sul, lesions, spacing)
        liver = liver_reference(sul, phantom.images["liver"].array > 0, spacing, lesions)
        results[tp] = (markers, liver)
    (base, liver), (follow, _) = results["baseline"], results["followup"]
    new = follow.lesion_count > base.lesion_count
    result = percist(base.sul_peak, follow.sul_peak, new, liver)
    assert result.category == response, result.reason
    assert pairs[response]["followup"].truth["patient_response"] == response


def test_phantom_command_feeds_the_biomarkers_command(tmp_path) -> None:
    import json

    from breastseg.cli.main import main

    out = tmp_path / "patient"
    args = ["phantom", "petct", "--out", str(out), "--seed", "2", "--response", "PMD"]
    assert main([*args, "--ct-spacing-mm", "4", "--pet-spacing-mm", "6"]) == 0
    truth = json.loads((out / "followup" / "truth.json").read_text())
    assert truth["patient_response"] == "PMD" and truth["lesion_count"] == 7  # six grown and a new node
    d = out / "followup"
    bio = ["petct", "biomarkers", "--pet", str(d / "pet.nii.gz"), "--pet-info", str(d / "truth.json")]
    bio += ["--mask", str(d / "lesions.nii.gz"), "--bone-mask", str(d / "bone.nii.gz")]
    assert main([*bio, "--liver-mask", str(d / "liver.nii.gz"), "--out", str(tmp_path / "bio")]) == 0
    doc = json.loads((tmp_path / "bio" / "biomarkers.json").read_text())
    assert doc["lesion_count"] == 7
    assert doc["mtv_ml"] == pytest.approx(sum(les["volume_ml"] for les in truth["lesions"]))
    sites = sorted(les["site"] for les in doc["lesions"])
    expected = sorted({"bone": "bone", "liver": "liver", "node": "other"}[les["site"]] for les in truth["lesions"])
    assert sites == expected
