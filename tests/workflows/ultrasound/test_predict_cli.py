"""`ultrasound predict` and `ultrasound evaluate` on synthetic images, PNG and DICOM, with a tiny trained model:
outputs, areas in mm² from the DICOM's ultrasound regions, and evaluate agreeing with predict's own masks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from breastseg.cli.main import main
from breastseg.evaluation.metrics import dice
from breastseg.learn.trainer import TrainConfig
from breastseg.nets import ResUNetConfig
from breastseg.workflows.ultrasound.dataset import case_fingerprints, pixel_fingerprint, read_busi
from breastseg.workflows.ultrasound.model import UltrasoundModel, train_fold, ultrasound_patches
from breastseg.workflows.ultrasound.predict import read_ultrasound_image
from tests.workflows.ultrasound.conftest import save_png, speckle_scene


def write_us_dicom(pixels: np.ndarray, path: Path, delta_x_cm: float, delta_y_cm: float) -> Path:
    """A minimal single-frame ultrasound DICOM with one calibrated region (physical units: cm)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"  # Ultrasound Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "US"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    region = Dataset()
    region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection = 3, 3
    region.PhysicalDeltaX, region.PhysicalDeltaY = delta_x_cm, delta_y_cm
    ds.SequenceOfUltrasoundRegions = [region]
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(11)
    for i in range(20):
        r = int(rng.integers(12, 20))
        image, mask = speckle_scene(900 + i, (96, 128), (int(rng.integers(30, 66)), int(rng.integers(30, 98)), r))
        save_png(image, root / "benign" / f"benign ({i}).png")
        save_png(mask, root / "benign" / f"benign ({i})_mask.png")
    cases = read_busi(root)
    net = ResUNetConfig(in_channels=1, depth=3, first_channels=8)
    cfg = TrainConfig(
        epochs=20, batch_size=4, learning_rate=2e-3, optimiser="adamw", loss="dice_ce", patch=ultrasound_patches(64)
    )
    result = train_fold(cases[:16], cases[16:], net, cfg, 64)
    seen = frozenset(case_fingerprints(cases))
    return UltrasoundModel(net, result.state_dict, 64, {"title": "tiny"}, training_fingerprints=seen).save(
        root / "tiny.pt"
    )


def test_predict_a_folder_of_png_and_dicom(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "scans"
    a, _ = speckle_scene(50, (100, 140), (50, 60, 16))
    b, _ = speckle_scene(51, (90, 120), (40, 70, 14))
    save_png(a, images / "a.png")
    write_us_dicom(b, images / "b.dcm", delta_x_cm=0.008, delta_y_cm=0.01)
    assert read_ultrasound_image(images / "b.dcm").spacing_mm == pytest.approx((0.1, 0.08))
    out = tmp_path / "out"
    assert main(["ultrasound", "predict", "--image", str(images), "--model", str(tiny_model), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [Path(r["image"]).name for r in summary["images"]] == ["a.png", "b.dcm"]
    for name, shape in (("a", a.shape), ("b", b.shape)):
        result = json.loads((out / f"{name}.json").read_text())
        mask = np.asarray(PILImage.open(out / f"{name}_mask.png")) > 0
        assert mask.shape == shape and result["area_px"] == int(mask.sum()) > 0
        overlay = PILImage.open(out / f"{name}_overlay.png")
        pixels = np.asarray(overlay)
        # the image's own rows on top, unscaled, the prediction outlined orange; a legend strip below names it
        assert pixels.shape[1:] == (shape[1], 3) and shape[0] < pixels.shape[0] <= shape[0] + 40
        outline = mask & ~ndimage.binary_erosion(mask)
        assert (pixels[: shape[0]][outline] == (255, 140, 0)).all()
        strip = pixels[shape[0] :]
        assert ((strip == (255, 140, 0)).all(axis=-1)).any()  # the colour's swatch
        legend = overlay.text["Description"]
        assert legend.startswith("prediction: orange") and "reference" not in legend
        area = f"{result['area_mm2']:.1f} mm²" if result["area_mm2"] is not None else f"{result['area_px']} px"
        assert f"lesion {area}" in legend
    b_json = json.loads((out / "b.json").read_text())
    assert b_json["area_mm2"] == pytest.approx(b_json["area_px"] * 0.1 * 0.08, abs=1e-3)
    a_json = json.loads((out / "a.json").read_text())
    assert a_json["area_mm2"] is None  # a PNG has no pixel size
    # a mask cut at the model's 0.5 holds a pixel at least that probable; a cut above the peak finds nothing
    assert 0.5 <= a_json["peak_probability"] <= 1.0
    above = min(0.9999, a_json["peak_probability"] + 1e-3)
    again = tmp_path / "again"
    args = ["ultrasound", "predict", "--image", str(images / "a.png"), "--model", str(tiny_model)]
    assert main([*args, "--threshold", str(above), "--out", str(again)]) == 0
    assert json.loads((again / "a.json").read_text())["area_px"] == 0
    assert "no lesion" in capsys.readouterr().out


def test_evaluate_two_models_agrees_with_predict(tmp_path: Path, tiny_model: Path) -> None:
    data = tmp_path / "data"
    refs = {}
    for i in range(3):
        image, mask = speckle_scene(60 + i, (100, 130), (50, 40 + 20 * i, 15))
        save_png(image, data / "images" / f"c{i}.png")
        save_png(mask, data / "masks" / f"c{i}.png")
        refs[f"c{i}"] = mask
    copy = tmp_path / "copy.pt"
    copy.write_bytes(tiny_model.read_bytes())
    copy.with_suffix(".card.md").write_text("copy")
    out = tmp_path / "eval"
    args = [
        "ultrasound",
        "evaluate",
        "--images",
        str(data / "images"),
        "--masks",
        str(data / "masks"),
        "--model",
        str(tiny_model),
        "--model",
        str(copy),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    for name in ("tiny", "copy"):
        assert {p.name for p in (out / name).iterdir()} == {
            "metrics.json",
            "images.csv",
            "confusion_matrix.png",
            "overlays",
        }
    comparison = json.loads((out / "comparison.json").read_text())["tiny vs copy"]
    assert comparison["images"] == 3 and comparison["dice"]["wilcoxon_p"] == 1.0
    # evaluate's per-image Dice equals the Dice of the masks `predict` writes, computed independently
    pred_out = tmp_path / "pred"
    assert (
        main(
            [
                "ultrasound",
                "predict",
                "--image",
                str(data / "images"),
                "--model",
                str(tiny_model),
                "--out",
                str(pred_out),
            ]
        )
        == 0
    )
    with (out / "tiny" / "images.csv").open() as f:
        rows = {r["case_id"]: r for r in csv.DictReader(f)}
    for case, ref in refs.items():
        predicted = np.asarray(PILImage.open(pred_out / f"{case}_mask.png")) > 0
        assert float(rows[case]["dice"]) == pytest.approx(dice(predicted, ref))
        # the evaluation overlay's legend gives that Dice and both colours; the reference is outlined green
        overlay = PILImage.open(out / "tiny" / "overlays" / f"{case}.png")
        reference = ref > 0
        by_hand = 2 * (predicted & reference).sum() / (predicted.sum() + reference.sum())
        assert f"Dice {by_hand:.2f}" in overlay.text["Description"]
        assert "reference: green" in overlay.text["Description"]
        pixels = np.asarray(overlay)[: ref.shape[0]]
        edge = reference & ~ndimage.binary_erosion(reference)
        assert (pixels[edge] == (0, 220, 0)).all()


def test_no_packaged_model_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, _ = speckle_scene(70, (64, 64))
    save_png(image, tmp_path / "x.png")
    monkeypatch.setattr("breastseg.workflows.ultrasound.model.DEFAULT_MODEL", "not_shipped.pt")
    assert main(["ultrasound", "predict", "--image", str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    assert "no packaged ultrasound model (not_shipped.pt)" in capsys.readouterr().err


def test_batch_ultrasound_scores_each_image_against_its_mask(tmp_path: Path, tiny_model: Path) -> None:
    rows = []
    for i, lesion in enumerate([(50, 60, 16), (40, 70, 14), (45, 50, 12)]):
        image, mask = speckle_scene(60 + i, (96, 128), lesion)
        save_png(image, tmp_path / "images" / f"u{i}.png")
        save_png(mask, tmp_path / "masks" / f"u{i}_mask.png")
        rows.append(f"u{i},images/u{i}.png,masks/u{i}_mask.png")
    manifest = tmp_path / "images.csv"
    manifest.write_text("case_id,image,mask\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    args = ["batch", "ultrasound", "--manifest", str(manifest), "--model", str(tiny_model), "--out", str(out)]
    assert main([*args, "--workers", "1"]) == 0
    single = tmp_path / "single"
    assert main(["ultrasound", "predict", "--image", str(tmp_path / "images" / "u1.png"), "--model", str(tiny_model),
                 "--out", str(single)]) == 0  # fmt: skip
    same = np.asarray(PILImage.open(single / "u1_mask.png")) == np.asarray(PILImage.open(out / "u1" / "u1_mask.png"))
    assert same.all()  # the batch writes what the single-image command writes
    with (out / "cohort.csv").open() as fh:
        table = {r["case_id"]: r for r in csv.DictReader(fh)}
    for i in range(3):
        pred = np.asarray(PILImage.open(out / f"u{i}" / f"u{i}_mask.png")) > 0
        ref = np.asarray(PILImage.open(tmp_path / "masks" / f"u{i}_mask.png").convert("L")) > 0
        expected = 2 * (pred & ref).sum() / (pred.sum() + ref.sum())
        assert float(table[f"u{i}"]["dice"]) == pytest.approx(expected)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dice"]["n"] == 3 and summary["lesion_found"] == sum(
        t["lesion_found"] == "True" for t in table.values()
    )


def test_evaluate_warns_when_it_scores_the_model_s_training_images(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_root = tiny_model.parent / "benign"
    data = tmp_path / "data"
    # two training pictures under new names and another lossless format, and one picture never seen
    (data / "images").mkdir(parents=True)
    for i, suffix in ((3, ".tif"), (7, ".bmp")):
        pixels = np.asarray(PILImage.open(train_root / f"benign ({i}).png"))
        PILImage.fromarray(pixels).save(data / "images" / f"renamed{i}{suffix}")
        mask = np.asarray(PILImage.open(train_root / f"benign ({i})_mask.png").convert("L")) > 0
        save_png(mask, data / "masks" / f"renamed{i}.png")
    new, new_mask = speckle_scene(4242, (96, 128), (50, 60, 15))
    save_png(new, data / "images" / "new.png")
    save_png(new_mask, data / "masks" / "new.png")
    assert pixel_fingerprint(new.astype(np.float32)) not in UltrasoundModel.load(tiny_model).training_fingerprints
    out = tmp_path / "eval"
    args = ["ultrasound", "evaluate", "--images", str(data / "images"), "--masks", str(data / "masks")]
    assert main([*args, "--model", str(tiny_model), "--device", "cpu", "--no-overlays", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: 2 of 3 images" in err and "training" in err
    assert json.loads((out / "metrics.json").read_text())["images_seen_in_training"] == 2
    assert "20 pixel fingerprints" in tiny_model.with_suffix(".card.md").read_text()


def test_unknown_device_is_a_clear_error(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, _ = speckle_scene(71, (64, 64))
    save_png(image, tmp_path / "x.png")
    args = ["ultrasound", "predict", "--image", str(tmp_path / "x.png"), "--model", str(tiny_model)]
    assert main([*args, "--device", "cuda:7", "--out", str(tmp_path / "o")]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_the_python_call_writes_what_the_command_writes(tmp_path: Path, tiny_model: Path) -> None:
    import breastseg

    image, _ = speckle_scene(81, (96, 128), (50, 60, 15))
    save_png(image, tmp_path / "scans" / "s.png")
    args = ["ultrasound", "predict", "--image", str(tmp_path / "scans"), "--model", str(tiny_model)]
    assert main([*args, "--out", str(tmp_path / "cli")]) == 0
    results = breastseg.ultrasound.predict(tmp_path / "scans", tmp_path / "api", model=tiny_model)
    assert [r.to_json() for r in results] == json.loads((tmp_path / "cli" / "summary.json").read_text())["images"]
    assert (tmp_path / "api" / "summary.json").read_text() == (tmp_path / "cli" / "summary.json").read_text()
    same = np.asarray(PILImage.open(tmp_path / "api" / "s_mask.png")) == np.asarray(
        PILImage.open(tmp_path / "cli" / "s_mask.png")
    )
    assert same.all()
