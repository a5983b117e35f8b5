"""Dataset readers on tiny synthetic folders: BUSI's two layouts, images/ + masks/, nnU-Net raw; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.workflows.ultrasound.dataset import load_case, read_busi, read_dataset, to_grayscale
from tests.workflows.ultrasound.conftest import save_png, speckle_scene


def test_busi_layout_with_multifocal_masks_normals_and_colour(tmp_path: Path) -> None:
    image, lesion_a = speckle_scene(1, lesion=(40, 50, 10))
    _, lesion_b = speckle_scene(1, lesion=(80, 120, 8))
    save_png(image, tmp_path / "benign/benign (1).png")
    save_png(lesion_a, tmp_path / "benign/benign (1)_mask.png")
    save_png(lesion_b, tmp_path / "benign/benign (1)_mask_1.png")
    rgb = np.stack([image, image // 2, np.full_like(image, 200)], axis=-1)  # burned-in colour, as 16 BUSI images
    save_png(rgb, tmp_path / "malignant/malignant (7).png")
    save_png(lesion_a, tmp_path / "malignant/malignant (7)_mask.png")
    save_png(image, tmp_path / "normal/normal (3).png")
    save_png(np.zeros_like(lesion_a), tmp_path / "normal/normal (3)_mask.png")

    cases = read_dataset(tmp_path)
    assert [(c.case_id, c.label, len(c.mask_paths)) for c in cases] == [
        ("benign (1)", "benign", 2),
        ("malignant (7)", "malignant", 1),
        ("normal (3)", "normal", 1),
    ]
    img, mask = load_case(cases[0])
    np.testing.assert_array_equal(mask, lesion_a | lesion_b)  # the union of the masks
    np.testing.assert_array_equal(img, image.astype(np.float32))
    colour, _ = load_case(cases[1])
    # ITU-R 601 luma, as PIL's convert("L") computes it (up to PIL's integer rounding)
    from PIL import Image as PILImage

    pil_luma = np.asarray(PILImage.fromarray(rgb).convert("L"), np.float32)
    assert np.abs(colour - pil_luma).max() <= 1.0
    assert not load_case(cases[2])[1].any()


def test_busi_images_and_mask_subfolders(tmp_path: Path) -> None:
    image, lesion = speckle_scene(2, lesion=(50, 60, 12))
    save_png(image, tmp_path / "benign/images/benign (2).png")
    save_png(lesion, tmp_path / "benign/mask/benign (2)_mask.png")
    (case,) = read_busi(tmp_path)
    assert case.label == "benign" and load_case(case)[1].sum() == lesion.sum()


def test_plain_folders_and_nnunet_raw(tmp_path: Path) -> None:
    image, lesion = speckle_scene(3, lesion=(60, 70, 15))
    save_png(image, tmp_path / "plain/images/a.png")
    save_png(lesion, tmp_path / "plain/masks/a.png")
    save_png(image, tmp_path / "plain/images/b.png")
    save_png(lesion, tmp_path / "plain/masks/b_mask.png")
    assert [c.case_id for c in read_dataset(tmp_path / "plain")] == ["a", "b"]
    assert [c.case_id for c in read_dataset(tmp_path / "plain/images", tmp_path / "plain/masks")] == ["a", "b"]

    raw = tmp_path / "Dataset501_US"
    save_png(image, raw / "imagesTr/us_001_0000.png")
    save_png(lesion.astype(np.uint8), raw / "labelsTr/us_001.png")  # labels 0/1, as nnU-Net writes them
    (raw / "dataset.json").write_text(
        json.dumps({"channel_names": {"0": "US"}, "labels": {"background": 0, "lesion": 1}, "file_ending": ".png"})
    )
    (case,) = read_dataset(raw)
    assert case.case_id == "us_001" and load_case(case)[1].sum() == lesion.sum()


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    image, lesion = speckle_scene(4, lesion=(50, 60, 12))
    save_png(image, tmp_path / "benign/benign (9).png")
    with pytest.raises(InputError, match=r"benign \(9\)\.png: no mask"):
        read_busi(tmp_path)
    save_png(lesion[:-4], tmp_path / "benign/benign (9)_mask.png")
    (case,) = read_busi(tmp_path)
    with pytest.raises(InputError, match=r"benign \(9\)_mask\.png: mask is \(160, 116\)"):
        load_case(case)
    (tmp_path / "benign/benign (9)_mask.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read as a raster image"):
        load_case(case)
    with pytest.raises(InputError, match="no BUSI class folders"):
        read_busi(tmp_path / "benign")
    with pytest.raises(InputError, match="grayscale or colour"):
        to_grayscale(np.zeros((4, 4, 5)))
