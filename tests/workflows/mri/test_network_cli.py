"""The MRI network end to end on phantoms through the command line (a tiny network: the mechanics, not the
accuracy), the hard-negative focus, and the commands' refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from breastseg.cli.main import main
from breastseg.errors import InputError, ModelError
from breastseg.image import Image
from breastseg.io import read_image, write_image
from breastseg.workflows.mri.inputs import MriPreprocessing, prepare_exam, read_exam_folder, read_reference
from breastseg.workflows.mri.network import MriModel, MriRecipe, enhancing_focus


@pytest.fixture(scope="module")
def exams(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dce")
    for seed in range(3):
        assert main(["phantom", "dce", "--out", str(root / f"e{seed}"), "--seed", str(seed), "--phases", "3"]) == 0
    (root / "cases.csv").write_text("case_id,exam\ne0,e0\ne1,e1\ne2,e2\n")
    (root / "one.csv").write_text("case_id,exam\ne2,e2\n")
    return root


@pytest.fixture(scope="module")
def model_path(exams: Path) -> Path:
    """A tiny network trained for two epochs on two phantom exams (the mechanics, not the accuracy)."""
    path = exams / "mri.pt"
    rc = main([
        "mri", "train", "--exams", str(exams / "cases.csv"), "--out", str(path), "--filters", "4",
        "--epochs", "2", "--patches-per-scan", "4", "--registration", "rigid", "--upsample-above-mm", "1.0",
        "--validation-fraction", "0.34", "--device", "cpu",
    ])  # fmt: skip
    assert rc == 0
    return path


def test_train_segment_evaluate_on_phantoms(
    exams: Path, model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    model = MriModel.load(model_path)
    assert model.recipe.first_channels == 4 and model.preprocessing == MriPreprocessing(1.0, "rigid")
    assert model.card["training_cases"].count("e") == 2 and model.card["validation_cases"].startswith("e")
    assert "generalised_dice_ce" in model_path.with_suffix(".card.md").read_text()

    out = tmp_path / "seg"
    assert (
        main(
            [
                "mri",
                "segment",
                "--exam",
                str(exams / "e2"),
                "--model",
                str(model_path),
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    first = read_image(exams / "e2" / "t1c_1.nii.gz")
    mask = read_image(out / "tumour.nii.gz")
    assert mask.grid.same_as(first.grid)  # back on the first T1c's own grid, though predicted on a ×2 one
    prob = read_image(out / "probability.nii.gz")
    assert prob.shape == (first.shape[0], 2 * first.shape[1], 2 * first.shape[2])  # 1.2 mm > 1.0 mm: upsampled
    p = np.asarray(prob.array)
    assert np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1
    # the study's post-processing, by hand: threshold at 0.6 × the maximum (nothing below 0.5), the face-connected
    # region holding the maximum, taken back to the first T1c's grid by nearest neighbour
    expected = np.zeros(p.shape, bool)
    if p.max() >= 0.5:
        labels, _ = ndimage.label(p >= 0.6 * p.max())
        expected = labels == labels[np.unravel_index(np.argmax(p), p.shape)]
    back = prob.with_array(expected.astype(np.uint8), units="label").resample_onto(first, order=0)
    np.testing.assert_array_equal(np.asarray(mask.array) > 0, back.array > 0)
    result = json.loads((out / "result.json").read_text())
    assert result["tumour_found"] == bool(np.asarray(mask.array).any())
    assert result["harmonisation"]["upsampled_in_plane"] is True and result["post_times_s"] == [90.0, 180.0, 270.0]
    assert (out / "report.png").stat().st_size > 10_000

    ev = tmp_path / "ev"
    assert (
        main(
            [
                "mri",
                "evaluate",
                "--exams",
                str(exams / "one.csv"),
                "--model",
                str(model_path),
                "--out",
                str(ev),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    doc = json.loads((ev / "evaluation.json").read_text())
    (row,) = doc["cases"]
    ref_ml = float(np.asarray(read_image(exams / "e2" / "tumour.nii.gz").array).sum()) * float(np.prod(first.spacing))
    assert row["reference_volume_ml"] == pytest.approx(ref_ml / 1000.0, rel=1e-6)
    assert 0.0 <= row["dice"] <= 1.0 and doc["summary"]["mean_dice"] == row["dice"]
    assert "mean Dice" in capsys.readouterr().out


def test_hard_negatives_are_the_brightest_breast_voxels_outside_the_tumour(exams: Path) -> None:
    exam = prepare_exam(read_exam_folder(exams / "e0"), MriPreprocessing(2.0, "none"))
    tumour = read_reference(exams / "e0", exam)
    focus = enhancing_focus(exam, tumour, 95.0)
    t1c = exam.features.t1c
    cut = np.percentile(t1c[exam.breast], 95.0)
    assert focus.any() and not (focus & tumour).any() and not (focus & ~exam.breast).any()
    assert t1c[focus].min() > cut
    np.testing.assert_array_equal(focus, exam.breast & (t1c > cut) & ~tumour)
    # the phantom's benign foci enhance: most of them are among the hard negatives
    benign = read_reference(exams / "e0", exam, "benign.nii.gz")
    assert (focus & benign).sum() > 0.5 * benign.sum()


def test_refusals_name_what_is_wrong(exams: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(
            [
                "mri",
                "segment",
                "--exam",
                str(exams / "e0"),
                "--t1",
                str(exams / "e0" / "t1.nii.gz"),
                "--model",
                str(exams / "cases.csv"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "either --exam" in capsys.readouterr().err
    lone = tmp_path / "lone"
    lone.mkdir()
    write_image(Image(np.ones((3, 4, 5), np.float32), (2.0, 1.0, 1.0)), lone / "t1.nii.gz")
    with pytest.raises(InputError, match=r"lone: t1\.nii\.gz but no post-contrast"):
        read_exam_folder(lone)
    with pytest.raises(ModelError):
        MriModel.load(exams / "e0" / "truth.json")
    with pytest.raises(InputError, match="must be multiples"):
        MriRecipe(network="monai_unet", patch_size=(16, 72, 80)).net_config()
    with pytest.raises(InputError, match="even size"):
        MriRecipe(patch_size=(19, 76, 75)).net_config()


def test_readers_command_scores_every_reader_against_the_others(tmp_path: Path) -> None:
    # three readers: R1 and R2 draw a 4³ cube, R3 a cube grown by one voxel per side; the network draws the cube.
    # R3's reference is R1 ∩ R2 = the cube: Dice = 2·64 / (64 + 6³) = 0.457; R1's is R2 ∩ R3 = the cube: 1.0
    cube = np.zeros((10, 10, 10), np.uint8)
    cube[3:7, 3:7, 3:7] = 1
    grown = np.zeros_like(cube)
    grown[2:8, 2:8, 2:8] = 1
    for name, arr in {"R1": cube, "R2": cube, "R3": grown, "net": cube}.items():
        (tmp_path / name).mkdir()
        for case in ("a", "b", "c"):
            write_image(Image(arr, (2.0, 1.0, 1.0)), tmp_path / name / f"{case}.nii.gz")
    args = ["mri", "readers"] + [a for r in ("R1", "R2", "R3") for a in ("--readers", str(tmp_path / r))]
    assert main([*args, "--model-pred", str(tmp_path / "net"), "--out", str(tmp_path / "study")]) == 0
    doc = json.loads((tmp_path / "study" / "readers.json").read_text())
    assert doc["cases"] == 3 and doc["case_files"] == ["a.nii.gz", "b.nii.gz", "c.nii.gz"]
    assert doc["readers"]["R3"]["reader_median_dice"] == pytest.approx(2 * 64 / (64 + 216))
    assert doc["readers"]["R1"]["reader_median_dice"] == 1.0 and doc["readers"]["R3"]["model_median_dice"] == 1.0
    assert doc["equivalence"]["lowest_reader"] == "R3"
    write_image(Image(cube, (2.0, 1.0, 1.5)), tmp_path / "R2" / "b.nii.gz")  # a reader on another grid
    assert main([*args, "--model-pred", str(tmp_path / "net"), "--out", str(tmp_path / "s2")]) == 2


def test_breast_network_trains_from_the_command_line_and_replaces_the_rule(exams: Path, tmp_path: Path) -> None:
    from breastseg.evaluation.metrics import dice
    from breastseg.workflows.mri.breast_network import BreastModel

    (tmp_path / "two.csv").write_text(f"case_id,exam\ne0,{exams / 'e0'}\ne1,{exams / 'e1'}\n")
    path = tmp_path / "breast.pt"
    assert main(["mri", "train-breast", "--exams", str(tmp_path / "two.csv"), "--out", str(path), "--epochs", "10",
                 "--device", "cpu"]) == 0  # fmt: skip
    model = BreastModel.load(path)
    t1 = read_image(exams / "e2" / "t1.nii.gz")
    found = model.mask(t1, "cpu")
    assert found.shape == t1.shape
    assert dice(found, read_image(exams / "e2" / "breast.nii.gz").array > 0) > 0.85  # an exam it never saw
    # a tumour model records which breast mask it was trained with, and preparation holds to it
    exam = read_exam_folder(exams / "e2")
    prepared = prepare_exam(exam, MriPreprocessing(2.0, "none", "network"), breast_network=model.as_function("cpu"))
    np.testing.assert_array_equal(prepared.breast, model.mask(prepared.harmonised.t1, "cpu"))
    np.testing.assert_array_equal(prepared.channels[3], prepared.breast)
    with pytest.raises(InputError, match="--breast-model"):
        prepare_exam(exam, MriPreprocessing(2.0, "none", "network"))
    with pytest.raises(InputError, match="trained with the threshold"):
        prepare_exam(exam, MriPreprocessing(2.0, "none"), breast_network=model.as_function("cpu"))
    assert MriPreprocessing.from_json(MriPreprocessing(2.0, "none", "network").to_json()).breast == "network"


def test_batch_mri_matches_segment_and_scores_dice(exams: Path, model_path: Path, tmp_path: Path) -> None:
    manifest = exams / "batch.csv"
    manifest.write_text("case_id,exam,reference\ne0,e0,e0/tumour.nii.gz\ne2,e2,e2/tumour.nii.gz\n")
    out = tmp_path / "batch"
    args = ["batch", "mri", "--manifest", str(manifest), "--model", str(model_path), "--out", str(out)]
    assert main([*args, "--device", "cpu", "--workers", "1"]) == 0
    single = tmp_path / "single"
    assert main(["mri", "segment", "--exam", str(exams / "e2"), "--model", str(model_path), "--out", str(single),
                 "--device", "cpu"]) == 0  # fmt: skip
    np.testing.assert_array_equal(
        read_image(out / "e2" / "tumour.nii.gz").array, read_image(single / "tumour.nii.gz").array
    )
    import csv

    with (out / "cohort.csv").open() as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    for case in ("e0", "e2"):
        pred = np.asarray(read_image(out / case / "tumour.nii.gz").array) > 0
        ref = np.asarray(read_image(exams / case / "tumour.nii.gz").array) > 0
        expected = 2 * (pred & ref).sum() / (pred.sum() + ref.sum()) if pred.sum() + ref.sum() else 1.0
        assert float(rows[case]["dice"]) == pytest.approx(expected)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == 2 and summary["dice"]["n"] == 2


def test_the_python_call_writes_what_the_command_writes(exams: Path, model_path: Path, tmp_path: Path) -> None:
    import breastseg

    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    args = ["mri", "segment", "--exam", str(exams / "e1"), "--model", str(model_path), "--device", "cpu"]
    assert main([*args, "--out", str(cli_out)]) == 0
    seg = breastseg.mri.segment(exams / "e1", api_out, model=model_path, device="cpu")
    np.testing.assert_array_equal(
        read_image(api_out / "tumour.nii.gz").array, read_image(cli_out / "tumour.nii.gz").array
    )
    # the probability to float32 rounding (threaded convolutions need not add in the same order twice)
    probability = [read_image(d / "probability.nii.gz").array for d in (api_out, cli_out)]
    np.testing.assert_allclose(probability[0], probability[1], atol=1e-6)
    a, b = (json.loads((d / "result.json").read_text()) for d in (cli_out, api_out))
    assert a["tumour"] == b["tumour"] == seg.to_json()["tumour"]
