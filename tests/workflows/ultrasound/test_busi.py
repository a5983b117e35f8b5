"""The real BUSI data (../shared/data/busi): the reader sees what SOURCE.md counts, and the split file the
project ships is exactly what `breastseg ultrasound split` makes from the data, with BUSI's known duplicates."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from breastseg.cli.main import main
from breastseg.evaluation.metrics import dice
from breastseg.workflows.ultrasound.dataset import load_case, read_busi
from breastseg.workflows.ultrasound.model import default_model_path
from breastseg.workflows.ultrasound.split import make_split


@pytest.fixture(scope="module")
def busi(data_dir: Path) -> Path:
    path = data_dir / "busi"
    if not path.is_dir():
        pytest.skip(f"BUSI not found at {path} (see README 'Data')")
    return path


def test_reader_counts_match_source_md(busi: Path) -> None:
    cases = read_busi(busi)
    assert Counter(c.label for c in cases) == {"benign": 437, "malignant": 210, "normal": 133}
    assert sum(len(c.mask_paths) for c in cases) == 798  # 17 images with 2–3 masks
    assert sum(len(c.mask_paths) > 1 for c in cases) == 17
    by_id = {c.case_id: c for c in cases}
    # manifest.csv's lesion_pixels_union is an independent count of the union of the masks
    with (busi / "manifest.csv").open() as f:
        rows = {r.split(",")[0]: r for r in f.read().splitlines()[1:]}
    for name in ("benign (4)", "benign (100)", "malignant (65)", "normal (113)"):
        expected = int(rows[f"{by_id[name].label}/{name}.png"].rsplit(",", 1)[1])
        assert int(load_case(by_id[name])[1].sum()) == expected


def test_shipped_split_is_reproducible_and_groups_known_duplicates(busi: Path) -> None:
    shipped = json.loads(
        (resources.files("breastseg.workflows.ultrasound") / "busi_5fold_split.json").read_text(encoding="utf-8")
    )
    fresh = make_split(read_busi(busi), n_folds=5, seed=0).as_dict()
    assert fresh["folds"] == shipped["folds"] and fresh["groups"] == shipped["groups"]
    groups = shipped["groups"]
    assert groups["benign (433)"] == groups["malignant (145)"]  # SOURCE.md: pixel-identical across classes
    classes = [{c.split(" (")[0] for c in g} for g in shipped["label_conflicts"]]
    benign_malignant = [c for c in classes if {"benign", "malignant"} <= c]
    assert len(benign_malignant) >= 8  # Pawłowska et al. 2023: 8 lesions appear under both classes


def test_packaged_model_is_small_carded_and_segments_busi(busi: Path, tmp_path: Path) -> None:
    """The shipped model (trained on all of BUSI, so these are training images: this checks the shipped file and
    its recipe — input size, intensity scaling, orientation, resizing back — not generalisation, which the
    cross-validation in docs/results/ultrasound.md measures). A model fed wrongly scaled or transposed images
    scores far below the bar."""
    model_path = default_model_path()
    assert model_path.stat().st_size <= 20e6
    card = model_path.with_suffix(".card.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in card and "Al-Dhabyani" in card and "Cross validation" in card
    cases = {c.case_id: c for c in read_busi(busi)}
    names = [f"benign ({i})" for i in range(1, 13)] + [f"malignant ({i})" for i in range(1, 9)]
    images = tmp_path / "images"
    images.mkdir()
    for name in names:
        (images / f"{name}.png").symlink_to(cases[name].image_path.resolve())
    assert main(["ultrasound", "predict", "--image", str(images), "--out", str(tmp_path / "out")]) == 0
    scores = []
    for name in names:
        predicted = np.asarray(Image.open(tmp_path / "out" / f"{name}_mask.png")) > 0
        scores.append(dice(predicted, load_case(cases[name])[1]))
    assert np.mean(scores) >= 0.75, scores


def test_the_packaged_model_knows_its_training_images(busi: Path, tmp_path: Path) -> None:
    """Scoring the packaged model on BUSI measures memory: it recognises every BUSI picture (stored fingerprints),
    also re-encoded under another name, and not a picture it never saw."""
    from breastseg.workflows.ultrasound.dataset import UltrasoundCase
    from breastseg.workflows.ultrasound.model import UltrasoundModel
    from breastseg.workflows.ultrasound.predict import seen_in_training

    model = UltrasoundModel.load(default_model_path())
    cases = read_busi(busi)
    picked = [cases[0], cases[400], cases[-1]]
    assert seen_in_training(model, picked) == [c.case_id for c in picked]
    pixels = np.asarray(Image.open(picked[1].image_path))
    Image.fromarray(pixels).save(tmp_path / "renamed.tif")
    flipped = np.ascontiguousarray(pixels[:, ::-1])
    Image.fromarray(flipped).save(tmp_path / "flipped.png")
    others = [
        UltrasoundCase("renamed", tmp_path / "renamed.tif", ()),
        UltrasoundCase("new", tmp_path / "flipped.png", ()),
    ]
    assert seen_in_training(model, others) == ["renamed"]
