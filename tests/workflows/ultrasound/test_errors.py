"""Error analysis: each failure's geometry named by hand-made masks, the worst share of images, colour overlays,
and `ultrasound analyse` on a small cross-validation — its re-predicted out-of-fold masks score exactly what the
CV recorded, and the rule it chooses travels into the final model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.cli.main import main
from breastseg.workflows.ultrasound.crossval import ImageScore, read_cv_scores
from breastseg.workflows.ultrasound.errors import failure_cause, has_colour_overlay, worst_lesion_images
from breastseg.workflows.ultrasound.model import UltrasoundModel
from breastseg.workflows.ultrasound.postprocess import MaskRule
from tests.workflows.ultrasound.conftest import save_png, speckle_scene, write_busi_like


def _box(shape: tuple[int, int], *boxes: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    for y0, y1, x0, x1 in boxes:
        m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize(
    ("prediction", "cause"),
    [
        ((), "missed"),
        (((30, 40, 30, 40),), "wrong structure"),
        (((10, 12, 10, 12), (30, 45, 30, 45)), "wrong structure beside the lesion"),
        (((10, 13, 10, 20), (17, 20, 10, 20)), "lesion split"),
        (((10, 14, 10, 20),), "too tight"),
        (((5, 25, 5, 25),), "too loose"),
        (((15, 30, 15, 30),), "loose and tight"),
        (((11, 20, 10, 22),), "outline off"),
    ],
)
def test_failure_causes_by_hand(prediction: tuple, cause: str) -> None:
    reference = _box((50, 50), (10, 20, 10, 20))  # 100 px
    assert failure_cause(reference, _box((50, 50), *prediction)) == cause


def test_worst_share_of_lesion_images_only() -> None:
    def score(case: str, tp: int, fp: int, fn: int) -> ImageScore:
        return ImageScore(tp=tp, fp=fp, tn=100, fn=fn, case_id=case, label="benign")

    scores = [score(f"c{i}", 10 * i, 5, 5) for i in range(1, 21)] + [score("normal", 0, 50, 0)]
    worst = worst_lesion_images(scores, 0.1)
    assert [s.case_id for s in worst] == ["c1", "c2"]  # ceil(0.1 × 20); the normal image is no candidate
    assert [s.case_id for s in worst_lesion_images(scores, 0.01)] == ["c1"]


def test_colour_overlay_is_found_in_colour_pixels_only(tmp_path: Path) -> None:
    grey, _ = speckle_scene(1, (40, 50))
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    assert not has_colour_overlay(save_png(rgb, tmp_path / "grey_rgb.png"))
    assert not has_colour_overlay(save_png(grey, tmp_path / "grey.png"))
    rgb[5:8, 5:20] = (0, 255, 255)  # a cyan caliper line
    assert has_colour_overlay(save_png(rgb, tmp_path / "calipers.png"))


def test_analyse_command_matches_the_recorded_cv_and_feeds_the_final_model(tmp_path: Path) -> None:
    write_busi_like(tmp_path / "data", {"benign": 10, "malignant": 5, "normal": 5}, seed=19, first_scene=300)
    data = str(tmp_path / "data")
    tiny = ["ultrasound", "train", "--data", data, "--depth", "3", "--channels", "4", "--size", "64", "--epochs", "3"]
    cv = tmp_path / "cv"
    assert main([*tiny, "--batch-size", "4", "--folds-to-run", "0,1", "--out", str(cv)]) == 0
    out = tmp_path / "analysis"
    assert main(["ultrasound", "analyse", "--cv", str(cv), "--data", data, "--worst", "0.3", "--out", str(out)]) == 0

    recorded = [s for s in read_cv_scores(cv) if s.tp + s.fn > 0]
    with (out / "mask_rules.csv").open() as f:
        rules = list(csv.DictReader(f))
    plain = next(r for r in rules if r["rule"] == MaskRule().describe())
    # the out-of-fold masks made again score what the CV recorded (another code path for the same Dice)
    assert float(plain["mean_dice"]) == pytest.approx(np.mean([s.dice for s in recorded]), abs=1e-4)
    assert int(plain["lesion_images"]) == len(recorded)
    with (out / "failures.csv").open() as f:
        failures = list(csv.DictReader(f))
    worst = worst_lesion_images(recorded, 0.3)
    assert [r["case_id"] for r in failures] == [s.case_id for s in worst]
    assert all(r["cause"] for r in failures) and (out / "causes.png").stat().st_size > 1000
    assert (out / "examples.png").is_file()

    chosen = json.loads((out / "mask_rule.json").read_text())
    best = max(
        float(r["mean_dice"])
        for r in rules
        if int(r["normals_with_false_positives"]) <= int(plain["normals_with_false_positives"])
    )
    assert chosen["mean_dice"] == pytest.approx(best, abs=1e-4)
    assert chosen["plain_cut_mean_dice"] == pytest.approx(float(plain["mean_dice"]), abs=1e-4)
    assert 0.0 <= chosen["wilcoxon_p_vs_plain_cut"] <= 1.0
    final = tmp_path / "final"
    args = [*tiny, "--final", "--mask-rule", str(out / "mask_rule.json"), "--epochs", "1", "--out", str(final)]
    assert main(args) == 0
    model = UltrasoundModel.load(final / "model.pt")
    assert model.rule == MaskRule.from_json(chosen)
    card = (final / "model.card.md").read_text()
    assert model.rule.describe() in card
    assert f"lesion Dice {chosen['mean_dice']:.3f} (the plain 0.5 cut: {chosen['plain_cut_mean_dice']:.3f}" in card
