"""The recorded split: every case once, near-duplicates in one fold, classes balanced, conflicts reported."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from breastseg.cli.main import main
from breastseg.workflows.ultrasound.dataset import read_busi
from breastseg.workflows.ultrasound.split import make_split, read_split_folds
from tests.workflows.ultrasound.conftest import save_png, speckle_scene


def _tiny_busi(root: Path) -> None:
    """12 benign, 6 malignant, 4 normal scenes; benign (1) copied as benign (2) (shifted) and as malignant (1)."""
    for cls, n, offset in (("benign", 12, 0), ("malignant", 6, 100), ("normal", 4, 200)):
        for i in range(1, n + 1):
            lesion = None if cls == "normal" else (60, 80, 12)
            image, mask = speckle_scene(offset + i, lesion=lesion)
            if cls == "benign" and i == 2:
                image, mask = speckle_scene(1, lesion=lesion)
                image, mask = np.roll(image, 2, axis=1), np.roll(mask, 2, axis=1)
            if cls == "malignant" and i == 1:
                image, mask = speckle_scene(1, lesion=lesion)
            save_png(image, root / cls / f"{cls} ({i}).png")
            save_png(mask, root / cls / f"{cls} ({i})_mask.png")


def test_split_keeps_duplicates_together_and_balances_classes(tmp_path: Path) -> None:
    _tiny_busi(tmp_path / "busi")
    cases = read_busi(tmp_path / "busi")
    split = make_split(cases, n_folds=3, seed=0)
    everything = [c for fold in split.folds for c in fold]
    assert sorted(everything) == sorted(c.case_id for c in cases)  # each case exactly once
    folds = {split.fold_of(c) for c in ("benign (1)", "benign (2)", "malignant (1)")}
    assert len(folds) == 1
    assert split.conflicts() == [["benign (1)", "benign (2)", "malignant (1)"]]
    for k in range(3):  # the other 20 single-image groups: 11 benign, 5 malignant, 4 normal, dealt round-robin
        train, test = split.train_test(k)
        assert not set(train) & set(test) and len(train) + len(test) == len(cases)
    normals = Counter(split.fold_of(c.case_id) for c in cases if c.label == "normal")
    assert max(normals.values()) - min(normals.values()) <= 1


def test_split_command_writes_a_file_training_reads(tmp_path: Path) -> None:
    _tiny_busi(tmp_path / "busi")
    out = tmp_path / "split.json"
    assert main(["ultrasound", "split", "--data", str(tmp_path / "busi"), "--folds", "3", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["n_cases"] == 22 and doc["n_groups"] == 20 and doc["hash"]["phash_max"] == 12
    assert {(lk["a"], lk["b"]) for lk in doc["links"]} >= {("benign (1)", "malignant (1)")}
    assert read_split_folds(out) == doc["folds"]
