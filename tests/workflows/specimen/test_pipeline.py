"""End to end: phantom → ``specimen assess`` → result checked against the phantom's truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.io import read_image
from breastseg.phantoms.base import Phantom, write_phantom
from breastseg.phantoms.specimen import write_specimen_dicom
from breastseg.workflows.specimen import pipeline
from breastseg.workflows.specimen.pipeline import AssessConfig, assess_specimen, run_assessment
from tests.workflows.specimen.conftest import clean_phantom, phantom_pet_info


@pytest.mark.parametrize(("seed", "margin_mm"), [(21, None), (22, 1.0), (23, 2.0), (24, 5.0)])
def test_threshold_method_calls_clean_phantoms_right(seed: int, margin_mm: float | None) -> None:
    ph = clean_phantom(seed, margin_mm)
    result = assess_specimen(ph.images["ct"], ph.images["pet"], phantom_pet_info(ph)).result
    assert result.margin.status == ph.truth["margin_status"]
    if margin_mm is None:
        assert result.margin.min_margin_mm == 0.0
    else:
        # the PET's ~1 mm blur widens the thresholded tumour: measured margins err on the safe side
        assert 0.1 < result.margin.min_margin_mm <= ph.truth["margin_mm"] + 0.2
    assert result.tumour_volume_ml == pytest.approx(ph.truth["tumour_volume_ml"], rel=0.6)
    assert result.specimen_volume_ml == pytest.approx(ph.truth["specimen_volume_ml"], rel=0.03)


def test_assess_command_writes_every_output(tmp_path: Path, negative_phantom: Phantom) -> None:
    write_phantom(negative_phantom, tmp_path / "case")
    out = tmp_path / "case" / "assessment"
    rc = main(
        [
            "specimen",
            "assess",
            "--ct",
            str(tmp_path / "case/ct.nii.gz"),
            "--pet",
            str(tmp_path / "case/pet.nii.gz"),
            "--pet-info",
            str(tmp_path / "case/truth.json"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    result = json.loads((out / "result.json").read_text())
    for key in (
        "schema_version",
        "margin_status",
        "min_margin_mm",
        "closest_point_mm",
        "closest_face",
        "per_face_margin_mm",
        "tumour_volume_ml",
        "specimen_volume_ml",
        "method",
        "model",
        "timings_s",
    ):
        assert key in result, key
    assert result["margin_status"] == "negative"
    low, high = result["margin_interval_mm"]
    assert low <= result["min_margin_mm"] <= high and result["margin_interval_probabilities"] is None
    # the threshold method's interval: its lowest fold threshold (the packaged folds lie at 0.25–0.265) and the
    # level halfway between the surrounding tissue and the maximum
    basis = result["margin_interval_basis"]
    assert basis.startswith("tumour drawn at 0.25 (lowest fold threshold) / 0.")
    ct = read_image(tmp_path / "case/ct.nii.gz")
    tumour = read_image(out / "tumour_mask.nii.gz")
    specimen = read_image(out / "specimen_mask.nii.gz")
    assert tumour.grid.same_as(ct.grid) and specimen.grid.same_as(ct.grid)
    assert (tumour.array > 0).sum() * ct.voxel_volume_ml == pytest.approx(result["tumour_volume_ml"], rel=1e-3)
    html = (out / "report.html").read_text()
    assert "NEGATIVE" in html and "figures/closest_point.png" in html
    assert f"{low:.2f}–{high:.2f} mm ({basis})" in html
    assert (out / "figures" / "closest_point.png").stat().st_size > 10_000
    assert "figures/surface_3d.png" in html and (out / "figures" / "surface_3d.png").stat().st_size > 10_000
    # numbers to their precision: the working spacing as it was set, points to 0.1 mm; no float32 noise
    spacing = " × ".join(f"{v:.4g}" for v in result["working_spacing_mm"]) + " mm"
    assert spacing in html and "0000000" not in html
    x, y, z = result["closest_point_mm"]
    assert f"{x:.1f}, {y:.1f}, {z:.1f} mm" in html
    # the model by its file's name, never where it is installed
    model_path = (result.get("model") or {}).get("path")
    if model_path:
        assert Path(model_path).name in html and str(Path(model_path).parent) not in html
    # the closest point lies in the tumour mask written on the CT grid
    idx = np.round(ct.grid.world_to_index(result["closest_point_mm"])).astype(int)
    assert tumour.array[tuple(idx)] == 1


def test_dicom_inputs_read_suv_from_headers(tmp_path: Path, positive_phantom: Phantom) -> None:
    paths = write_specimen_dicom(positive_phantom, tmp_path / "dicom")
    result = run_assessment(paths["ct"], paths["pet"], tmp_path / "out")
    assert result.margin.status == "positive"
    # what the Python caller gets is what result.json holds (it adds only the list of files written)
    on_disk = json.loads((tmp_path / "out" / "result.json").read_text())
    assert {k: v for k, v in on_disk.items() if k != "files"} == json.loads(json.dumps(result.to_json()))
    assert on_disk["inputs"] == {"ct": str(paths["ct"]), "pet": str(paths["pet"])}
    sul_factor = positive_phantom.truth["pet"]["sul_per_bqml"] / positive_phantom.truth["pet"]["suvbw_per_bqml"]
    assert result.tumour_sul_max == pytest.approx(4.0 * sul_factor, rel=0.35)


def test_the_margin_interval_must_bracket_the_probability_threshold() -> None:
    from breastseg.errors import InputError

    with pytest.raises(InputError, match=r"either side of the tumour probability threshold 0\.5"):
        AssessConfig(interval_probabilities=(0.6, 0.7))
    assert AssessConfig(probability_threshold=0.4, interval_probabilities=(0.2, 0.8)).interval_probabilities[0] == 0.2


def test_empty_prediction_is_an_explicit_negative(negative_phantom: Phantom, tmp_path: Path) -> None:
    """A method that finds no tumour in a PET with uptake reads negative, and says why (a PET without signal is
    "not assessable" instead: tests/reliability)."""
    from importlib import resources

    ph = negative_phantom
    model = json.loads((resources.files("breastseg.models") / "specimen_threshold_petct.json").read_text())
    for fold in model["folds"]:
        fold["value"] = 1.01  # above the specimen's own maximum: no voxel passes
    (tmp_path / "never.json").write_text(json.dumps(model))
    cfg = AssessConfig(model=str(tmp_path / "never.json"))
    result = assess_specimen(ph.images["ct"], ph.images["pet"], phantom_pet_info(ph), cfg).result
    assert result.margin.status == "negative" and result.margin.min_margin_mm is None
    assert result.margin.reason == "no tumour predicted in the specimen"


def test_failed_run_leaves_no_half_written_folder(
    tmp_path: Path, negative_phantom: Phantom, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_phantom(negative_phantom, tmp_path / "case")
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.json").write_text("{}")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("breastseg.workflows.specimen.report_html.specimen_report", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        run_assessment(
            tmp_path / "case/ct.nii.gz",
            tmp_path / "case/pet.nii.gz",
            out,
            AssessConfig(),
            pet_info_path=tmp_path / "case/truth.json",
            overwrite=True,  # earlier.json is not breastseg's: without this the run is refused before it starts
        )
    assert sorted(p.name for p in out.iterdir()) == ["earlier.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case", "out"]


def test_missing_bundle_is_a_model_error(negative_phantom: Phantom, tmp_path: Path) -> None:
    from breastseg.errors import ModelError

    cfg = AssessConfig(method="resunet", model=str(tmp_path / "missing.pt"))
    with pytest.raises(ModelError, match="no such model bundle"):
        assess_specimen(
            negative_phantom.images["ct"], negative_phantom.images["pet"], phantom_pet_info(negative_phantom), cfg
        )
    assert pipeline.default_model_path("threshold").is_file()
    # loaded in the background (as run_assessment does): the same error, raised when the model is needed,
    # and nothing written
    assert pipeline.start_model_load(AssessConfig()) is None
    write_phantom(negative_phantom, tmp_path / "case")
    with pytest.raises(ModelError, match="no such model bundle"):
        run_assessment(
            tmp_path / "case/ct.nii.gz",
            tmp_path / "case/pet.nii.gz",
            tmp_path / "out",
            cfg,
            tmp_path / "case/truth.json",
        )
    assert not (tmp_path / "out").exists()


def test_resunet_bundle_runs_triplanar(tmp_path: Path, tiny_bundle, phantom_lamellae) -> None:
    from breastseg.evaluation.metrics import dice
    from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom

    path = tiny_bundle.save(tmp_path / "bundle.pt")
    ph = make_specimen_phantom(
        SpecimenPhantomConfig(
            seed=600, ct_spacing_mm=0.3, pet_spacing_mm=0.6, specimen_size_mm=(20.0, 24.0, 30.0), tumour_diameter_mm=9.0
        )
    )
    cfg = AssessConfig(method="resunet", model=str(path))
    a = assess_specimen(
        ph.images["ct"], ph.images["pet"], phantom_pet_info(ph), cfg, model=pipeline.start_model_load(cfg)
    )
    assert a.result.model["members_used"] == 3 and a.result.model["input"] == "ct+pet"
    assert a.result.model["device"] == "cpu" and a.result.model["precision"] in ("float32", "bfloat16")
    assert a.result.margin.ensemble_positive_fraction in (0.0, 1 / 3, 2 / 3, 1.0)
    truth = ph.images["tumour"].array[a.pair.crop] > 0
    assert dice(a.tumour, truth) > 0.5
    # the interval: the network's two contours and the PET's contrast midpoint, the read margin inside it
    result = a.result.to_json()
    low, high = result["margin_interval_mm"]
    assert low <= result["min_margin_mm"] and (high is None or result["min_margin_mm"] <= high)
    assert result["margin_interval_probabilities"] == [0.3, 0.7]
    assert "contrast midpoint" in result["margin_interval_basis"]
    unsettled = result["margin_status"] == "negative" and low <= 0.1
    assert any("does not settle the status" in w for w in result["warnings"]) == unsettled
    # the leakage guard: naming a patient every member saw is refused rather than silently used
    from breastseg.errors import ModelError

    with pytest.raises(ModelError, match="every member"):
        assess_specimen(
            ph.images["ct"],
            ph.images["pet"],
            phantom_pet_info(ph),
            AssessConfig(method="resunet", model=str(path), patient_id="pt0"),
        )


def test_resunet_runs_at_the_bundle_pixel_size_on_a_finer_ct(tmp_path: Path, tiny_bundle) -> None:
    """A CT twice as fine as the training lamellae is predicted on the bundle's 0.3 mm grid, mask on the CT grid."""
    from breastseg.evaluation.metrics import dice
    from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom

    assert tiny_bundle.pixel_spacing_mm == pytest.approx(0.3)
    path = tiny_bundle.save(tmp_path / "bundle.pt")
    ph = make_specimen_phantom(
        SpecimenPhantomConfig(
            seed=600,
            ct_spacing_mm=0.15,
            pet_spacing_mm=0.6,
            specimen_size_mm=(20.0, 24.0, 30.0),
            tumour_diameter_mm=9.0,
        )
    )
    a = assess_specimen(ph.images["ct"], ph.images["pet"], phantom_pet_info(ph), AssessConfig("resunet", str(path)))
    assert a.result.model["pixel_spacing_mm"] == pytest.approx([0.3, 0.3, 0.3], rel=0.02)
    assert a.result.working_spacing_mm == pytest.approx([0.15, 0.15, 0.15])
    assert a.tumour.shape == a.pair.tissue.shape
    assert dice(a.tumour, ph.images["tumour"].array[a.pair.crop] > 0) > 0.5


def test_network_interval_reaches_past_an_overshooting_network_to_the_pet_edge() -> None:
    """A tumour block 2 mm below every face in tissue of 0.2× its uptake, PET blurred 1 mm FWHM, and a "network"
    whose tumour follows the blur outward (its 0.3 and 0.7 contours lie at 0.21 and 0.29 of the maximum, in the
    dense tissue): both of its contours read the margin too close, and only the PET's contrast midpoint (0.6,
    halfway from the surrounding 0.2; it lies on the blurred edge) brings the interval's upper end to the truth.
    A network without a PET channel has no such bound (``None``: the probabilities alone)."""
    from scipy import ndimage

    from breastseg.image import Image
    from breastseg.masks import depth_below_surface_mm
    from breastseg.workflows.specimen.margin import interval_from_masks, mask_margin_mm
    from breastseg.workflows.specimen.preprocess import SpecimenPair

    spacing = (0.1, 0.1, 0.1)
    tissue = np.zeros((70, 70, 80), bool)
    tissue[5:65, 5:65, 5:75] = True
    uptake = np.where(tissue, 0.2, 0.0)
    uptake[26:45, 26:45, 26:55] = 1.0  # 2 mm (20 voxels) of tissue between the tumour and every face
    pet = ndimage.gaussian_filter(uptake, sigma=1.0 / 2.3548 / 0.1) * 5.0  # SUL, maximum ≈ 5
    ct = Image(np.where(tissue, 40.0, -1000.0), spacing, modality="CT", units="HU")
    pair = SpecimenPair(ct, Image(pet, spacing, units="SUL"), tissue, ct, (slice(None),) * 3, ~tissue, -500.0)
    probability = np.clip((pet / pet[tissue].max() - 0.19) / 0.13, 0.0, 1.0)
    depth = depth_below_surface_mm(tissue, spacing)
    truth = mask_margin_mm(uptake == 1.0, depth)
    assert truth == pytest.approx(2.0, abs=0.11)

    drawn = pipeline.network_interval_masks(probability, pair, ("pet",), AssessConfig(method="resunet"))
    assert drawn is not None and drawn.probabilities == (0.3, 0.7)
    network_low, network_high = (mask_margin_mm(m, depth) for m in (drawn.wide, drawn.narrow[0]))
    assert network_low is not None and network_high is not None and network_high < truth - 0.3
    low, high = interval_from_masks(drawn.wide, drawn.narrow, depth, None)
    assert low == pytest.approx(network_low) and high is not None and low < truth <= high + 0.1
    level = float(drawn.basis.split("contrast midpoint, ")[1].split()[0])
    assert level == pytest.approx(0.6, abs=0.02) and "probability ≥ 0.7" in drawn.basis
    assert interval_from_masks(drawn.wide, drawn.narrow[:1], depth, None)[1] == pytest.approx(network_high)
    assert pipeline.network_interval_masks(probability, pair, ("ct",), AssessConfig(method="resunet")) is None
