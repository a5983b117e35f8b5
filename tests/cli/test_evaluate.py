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


def test_different_grids_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_image(Image(_box((4, 5, 6), (slice(1, 2),) * 3), (1.0, 1.0, 1.0)), tmp_path / "a.nii.gz")
    write_image(Image(_box((4, 5, 6), (slice(1, 2),) * 3), (1.0, 1.0, 2.0)), tmp_path / "b.nii.gz")
    rc = main(["evaluate", "seg", "--pred", str(tmp_path / "a.nii.gz"), "--ref", str(tmp_path / "b.nii.gz")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "a.nii.gz and" in err and "b.nii.gz are not on the same voxel grid" in err and "spacing" in err
