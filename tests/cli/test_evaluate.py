"""``breastseg evaluate seg``: metrics of two mask files as JSON, and refusal of mismatched grids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.image import Image
from breastseg.io import write_image


def _box(shape: tuple[int, ...], sl: tuple[slice, ...]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[sl] = 1
    return m


def test_two_nifti_masks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spacing = (2.0, 1.0, 0.5)
    ref = _box((10, 20, 20), (slice(2, 6), slice(5, 15), slice(5, 15)))  # 400 voxels
    pred = _box((10, 20, 20), (slice(2, 6), slice(5, 15), slice(7, 17)))  # shifted 2 voxels in x: 320 shared
    write_image(Image(ref, spacing), tmp_path / "ref.nii.gz")
    write_image(Image(pred, spacing), tmp_path / "pred.nrrd")
    rc = main(
        [
            "evaluate",
            "seg",
            "--pred",
            str(tmp_path / "pred.nrrd"),
            "--ref",
            str(tmp_path / "ref.nii.gz"),
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dice"] == pytest.approx(2 * 320 / 800)
    assert out["reference_volume_ml"] == pytest.approx(400 * 1.0 / 1000)
    assert out["hd95_mm"] == pytest.approx(1.0)  # 2 voxels × 0.5 mm on the shifted faces
    assert out["lesions"] == {"tp": 1, "fn": 0, "fp": 0, "recall": 1.0, "precision": 1.0}
    assert json.loads((tmp_path / "m.json").read_text()) == out


def test_png_lamella_with_unknown_label(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ref = np.zeros((30, 30), np.uint8)
    ref[10:20, 10:20] = 1
    ref[0:5, 0:5] = 2  # unknown
    pred = np.zeros((30, 30), np.uint8)
    pred[10:20, 10:20] = 1
    pred[0:5, 0:5] = 1  # predicted tumour where the truth is unknown: not counted
    write_image(Image(ref, (1.0, 1.0)), tmp_path / "ref.png")
    write_image(Image(pred, (1.0, 1.0)), tmp_path / "pred.png")
    rc = main(
        [
            "evaluate",
            "seg",
            "--pred",
            str(tmp_path / "pred.png"),
            "--ref",
            str(tmp_path / "ref.png"),
            "--label",
            "1",
            "--ignore-label",
            "2",
            "--spacing-mm",
            "0.1,0.1",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dice"] == 1.0 and out["ignored_pixels"] == 25
    assert out["spacing_mm"] == [0.1, 0.1]
    assert out["reference_area_cm2"] == pytest.approx(100 * 0.01 / 100)


def test_a_prediction_on_another_grid_is_scored_on_the_reference_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The reference-grid rule: the prediction is moved onto the reference (nearest neighbour), never the reverse;
    one reaching outside the reference's field of view is refused, naming the voxels it would lose."""
    ref = Image(_box((4, 6, 6), (slice(1, 3), slice(2, 4), slice(2, 4))), (2.0, 1.0, 1.0))  # 2 x 2 x 2 voxels
    # reference voxels at z = 2 and 4 mm (centres); the prediction on a 1 mm grid at z = 3, 4, 5 mm
    fine = np.zeros((8, 6, 6), np.uint8)
    fine[3:6, 2:4, 2:4] = 1
    write_image(ref, tmp_path / "ref.nii.gz")
    write_image(Image(fine, (1.0, 1.0, 1.0)), tmp_path / "pred.nii.gz")
    rc = main(["evaluate", "seg", "--pred", str(tmp_path / "pred.nii.gz"), "--ref", str(tmp_path / "ref.nii.gz")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    # nearest neighbour at the reference's centres z = 2 and 4 mm: fine slice 2 (empty) and 4 (set) -> 1 of 2 slices
    assert out["prediction_resampled"] is True and out["spacing_mm"] == [2.0, 1.0, 1.0]
    assert out["dice"] == pytest.approx(2 * 4 / (4 + 8))
    outside = np.zeros((10, 6, 6), np.uint8)
    outside[9, 2:4, 2:4] = 1  # z = 9 mm, beyond the reference's last voxel (centre 6 mm, edge 7 mm)
    write_image(Image(outside, (1.0, 1.0, 1.0)), tmp_path / "outside.nii.gz")
    rc = main(["evaluate", "seg", "--pred", str(tmp_path / "outside.nii.gz"), "--ref", str(tmp_path / "ref.nii.gz")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "4 of its 4 foreground voxels lie outside the field of view" in err and "spacing" in err
