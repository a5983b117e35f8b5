"""Ultrasound images in every storage mode read as the picture they show (or are refused), and a blank frame gets
no lesion; `evaluate seg` refuses a label neither mask holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from breastseg.cli.main import main
from breastseg.errors import InputError
from breastseg.io.raster import read_pixels


@pytest.fixture(scope="module")
def grey() -> np.ndarray:
    """A speckled 8-bit 'ultrasound' with a dark oval lesion (the values breastseg must read back exactly)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:160, :200]
    image = 90 + 40 * rng.rayleigh(1.0, (160, 200))
    image[((yy - 80) / 30) ** 2 + ((xx - 100) / 45) ** 2 < 1] = 25 + 10 * rng.random()
    return np.clip(image, 0, 255).astype(np.uint8)


def _variants(grey: np.ndarray, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.{ext}" for name, ext in [("8bit", "png"), ("16bit", "png"), ("cmyk", "tif")]}
    PILImage.fromarray(grey).save(paths["8bit"])
    PILImage.fromarray(grey.astype(np.uint16) * 257).save(paths["16bit"])  # the full 16-bit range
    PILImage.fromarray(grey).convert("RGB").convert("CMYK").save(paths["cmyk"])
    palette = PILImage.fromarray(grey, mode="P")
    palette.putpalette([v for g in range(256) for v in (g, g, g)])
    paths["palette"] = folder / "palette.png"
    palette.save(paths["palette"])
    paths["12bit"] = folder / "12bit.png"
    PILImage.fromarray(np.round(grey.astype(np.float64) * 4095 / 255).astype(np.uint16)).save(paths["12bit"])
    return paths


def test_every_mode_reads_as_the_picture_it_shows(grey: np.ndarray, tmp_path: Path) -> None:
    paths = _variants(grey, tmp_path)
    for name in ("8bit", "16bit"):
        assert np.array_equal(np.asarray(read_pixels(paths[name]), np.float32), grey.astype(np.float32)), name
    for name in ("cmyk", "palette"):  # colour models decoded to the RGB they show: here grey in every channel
        rgb = read_pixels(paths[name])
        assert rgb.shape == (*grey.shape, 3) and all(np.array_equal(rgb[..., c], grey) for c in range(3)), name
    assert np.abs(read_pixels(paths["12bit"]) - grey).max() <= 0.5  # 12-bit scaled from its own depth


def test_a_multipage_tiff_is_refused(grey: np.ndarray, tmp_path: Path) -> None:
    frames = [PILImage.fromarray(grey), PILImage.fromarray(255 - grey)]
    frames[0].save(tmp_path / "cine.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="holds 2 frames"):
        read_pixels(tmp_path / "cine.tif")


def test_prediction_does_not_depend_on_the_storage_mode_and_a_blank_frame_is_refused(
    grey: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    paths = _variants(grey, tmp_path / "images")
    areas = {}
    for name in ("8bit", "16bit", "cmyk", "palette"):
        assert main(["ultrasound", "predict", "--image", str(paths[name]), "--out", str(tmp_path / name)]) == 0
        areas[name] = json.loads((tmp_path / name / f"{name}.json").read_text())["area_px"]
    assert len(set(areas.values())) == 1, areas
    PILImage.fromarray(np.zeros_like(grey)).save(tmp_path / "black.png")
    capsys.readouterr()
    assert main(["ultrasound", "predict", "--image", str(tmp_path / "black.png"), "--out", str(tmp_path / "b")]) == 2
    assert "every voxel is 0" in capsys.readouterr().err


def test_evaluate_refuses_a_label_that_neither_mask_holds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 1
    PILImage.fromarray(mask).save(tmp_path / "a.png")
    PILImage.fromarray(mask).save(tmp_path / "b.png")
    argv = ["evaluate", "seg", "--pred", str(tmp_path / "a.png"), "--ref", str(tmp_path / "b.png"), "--label", "99"]
    assert main(argv) == 2
    assert "label 99 is in neither mask" in capsys.readouterr().err
