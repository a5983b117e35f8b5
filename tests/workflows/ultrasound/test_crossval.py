"""Cross-validation bookkeeping and read-outs, checked by hand: fold roles, per-image metrics, pooled numbers,
normal images' false-positive area; and the train command end to end on a tiny synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.workflows.ultrasound.crossval import ImageScore, fold_cases, score_image, summarise_cv
from breastseg.workflows.ultrasound.dataset import UltrasoundCase
from tests.workflows.ultrasound.conftest import write_busi_like


def test_fold_roles() -> None:
    cases = [UltrasoundCase(c, Path(c), ()) for c in "abcdefghij"]
    folds = [["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"], ["i", "j"]]
    train, val, test = fold_cases(cases, folds, 4)
    assert [c.case_id for c in test] == ["i", "j"] and [c.case_id for c in val] == ["a", "b"]
    assert [c.case_id for c in train] == list("cdefgh")


def test_scores_and_summary_by_hand() -> None:
    ref = np.zeros((10, 10), bool)
    ref[2:6, 2:6] = True  # 16 lesion pixels
    pred = np.zeros((10, 10), bool)
    pred[2:6, 4:8] = True  # 8 overlap, 8 false positive
    s = score_image(UltrasoundCase("b1", Path("b1"), (), "benign"), 0, pred, ref)
    assert (s.tp, s.fp, s.fn, s.tn) == (8, 8, 8, 76)
    assert s.dice == pytest.approx(0.5) and s.recall == pytest.approx(0.5) and s.pixel_accuracy == pytest.approx(0.84)
    m = ImageScore(tp=30, fp=0, fn=10, tn=60, case_id="m1", label="malignant", fold=1)  # Dice 60/70
    n = ImageScore(tp=0, fp=5, fn=0, tn=95, case_id="n1", label="normal", fold=2)
    assert n.dice is None and n.recall is None
    summary = summarise_cv([s, m, n])
    assert summary["lesion"]["per_image"]["dice"]["mean"] == pytest.approx((0.5 + 60 / 70) / 2)
    assert summary["lesion"]["pooled"]["dice"] == pytest.approx(2 * 38 / (2 * 38 + 8 + 18))
    assert summary["lesion"]["pooled"]["confusion_matrix"]["counts"] == [[136, 8], [18, 38]]
    assert summary["benign"]["images"] == 1 and summary["malignant"]["per_image"]["recall"]["mean"] == 0.75
    assert summary["normal"]["images_with_false_positives"] == 1
    assert summary["normal"]["false_positive_fraction_of_image"]["mean"] == pytest.approx(0.05)


def test_train_command_runs_and_resumes(tmp_path: Path) -> None:
    write_busi_like(tmp_path / "data", {"benign": 8, "malignant": 4, "normal": 3}, seed=9, first_scene=700)
    tiny = ["ultrasound", "train", "--data", str(tmp_path / "data"), "--depth", "3", "--channels", "4", "--size", "64"]
    args = [
        *tiny,
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--folds-to-run",
        "0,1",
        "--out",
        str(tmp_path / "cv"),
    ]
    assert main(args) == 0
    out = tmp_path / "cv"
    assert {p.name for p in out.iterdir()} >= {
        "split.json",
        "fold0.pt",
        "fold1.pt",
        "fold0_images.csv",
        "cv_summary.json",
    }
    assert not list(out.glob("*.checkpoint.pt"))
    summary = json.loads((out / "cv_summary.json").read_text())
    split = json.loads((out / "split.json").read_text())
    tested = len(split["folds"][0]) + len(split["folds"][1])
    assert summary["folds_run"] == [0, 1]
    assert summary["lesion"]["images"] + summary.get("normal", {}).get("images", 0) == tested
    before = (out / "fold0_images.csv").stat().st_mtime_ns
    assert main(args) == 0  # resumes: finished folds are read back, not retrained
    assert (out / "fold0_images.csv").stat().st_mtime_ns == before

    final = [
        *tiny,
        "--epochs",
        "1",
        "--final",
        "--cv-summary",
        str(out / "cv_summary.json"),
        "--licence",
        "CC BY 4.0",
        "--out",
        str(tmp_path / "final"),
    ]
    assert main(final) == 0
    card = (tmp_path / "final" / "model.card.md").read_text()
    assert "CC BY 4.0" in card and "per-image Dice" in card and "poly schedule" in card
    assert "all 15 images (12 with a lesion, 3 normal)" in card  # the CV's recipe: normals train too


def test_compare_command_pairs_images_and_matches_scipy(tmp_path: Path) -> None:
    from scipy.stats import wilcoxon

    from breastseg.workflows.ultrasound.crossval import write_scores

    rng = np.random.default_rng(3)
    dice_a, dice_b = [], []
    for name, shift in (("a", 0), ("b", 4)):
        for k in range(2):
            scores = []
            for i in range(10):
                tp = int(rng.integers(20, 90)) + shift * i  # b gains on most images
                fp, fn = int(rng.integers(0, 30)), int(rng.integers(1, 30))
                scores.append(ImageScore(tp=tp, fp=fp, fn=fn, tn=900, case_id=f"c{k}_{i}", label="benign", fold=k))
            scores.append(ImageScore(tp=0, fp=3, fn=0, tn=997, case_id=f"n{k}", label="normal", fold=k))
            (dice_a if name == "a" else dice_b).extend(2 * s.tp / (2 * s.tp + s.fp + s.fn) for s in scores[:-1])
            (tmp_path / name).mkdir(exist_ok=True)
            write_scores(scores[::-1] if name == "b" else scores, tmp_path / name / f"fold{k}_images.csv")
    out = tmp_path / "cmp.json"
    cmd = ["ultrasound", "compare", "--cv", str(tmp_path / "a")]
    assert main([*cmd, "--cv", str(tmp_path / "b"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    pair = result["comparisons"][f"{tmp_path / 'a'} vs {tmp_path / 'b'}"]
    assert pair["images"] == 20  # normals are not paired for Dice
    assert pair["dice"]["mean_a"] == pytest.approx(np.mean(dice_a))
    assert pair["dice"]["wilcoxon_p"] == pytest.approx(wilcoxon(dice_a, dice_b).pvalue, rel=1e-6)
    assert main([*cmd, "--cv", str(tmp_path), "--out", str(out)]) == 2  # not a CV folder: a clear error
