"""Mask rules from a probability map, by hand: the cut, one component kept (by area or by probability mass),
holes filled; their scores on images with and without a lesion; and the choice that may not add findings on
normal images."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.workflows.ultrasound.postprocess import (
    MaskRule,
    RuleScore,
    RuleTally,
    candidate_rules,
    choose_rule,
    score_rules,
)


def _two_blobs() -> np.ndarray:
    """A large faint blob (6 × 6 px at 0.55) and a small confident one (3 × 3 px at 0.95)."""
    p = np.zeros((20, 20), np.float32)
    p[2:8, 2:8] = 0.55
    p[12:15, 12:15] = 0.95
    return p


def test_cut_and_component_rules_by_hand() -> None:
    p = _two_blobs()
    assert MaskRule().apply(p).sum() == 36 + 9
    assert MaskRule(0.6).apply(p).sum() == 9
    largest = MaskRule(components="largest").apply(p)
    assert largest.sum() == 36 and largest[4, 4]
    # probability mass: 36 × 0.55 = 19.8 beats 9 × 0.95 = 8.55; a fainter large blob loses
    assert MaskRule(components="most_probable").apply(p).sum() == 36
    p[2:8, 2:8] = 0.51
    p[12:15, 12:15] = 0.99
    p[11:16, 11:16] = np.maximum(p[11:16, 11:16], 0.8)  # 25 px: 9 × 0.99 + 16 × 0.8 = 21.7 > 36 × 0.51 = 18.4
    kept = MaskRule(components="most_probable").apply(p)
    assert kept.sum() == 25 and kept[13, 13]


def test_faint_components_dropped_before_one_is_chosen() -> None:
    p = _two_blobs()
    assert MaskRule(min_peak=0.9).apply(p).sum() == 9  # the faint blob never reaches 0.9
    assert MaskRule(min_peak=0.9, components="largest").apply(p).sum() == 9  # chosen among what remains
    assert MaskRule(0.3, min_peak=0.96).apply(p).sum() == 0
    p[5, 5] = 0.92  # one confident pixel keeps its whole component, cut at the threshold
    assert MaskRule(min_peak=0.9).apply(p).sum() == 45


def test_holes_filled_and_empty_maps() -> None:
    ring = np.zeros((12, 12), np.float32)
    ring[2:9, 2:9] = 0.9
    ring[4:7, 4:7] = 0.1
    assert MaskRule().apply(ring).sum() == 49 - 9
    assert MaskRule(fill_holes=True).apply(ring).sum() == 49
    assert not MaskRule(components="largest", fill_holes=True).apply(np.zeros((5, 5), np.float32)).any()


def test_rule_round_trips_and_refuses_nonsense() -> None:
    rule = MaskRule(0.4, "most_probable", True, 0.8)
    assert MaskRule.from_json(rule.to_json()) == rule
    assert MaskRule.from_json(None) == MaskRule()  # a model file from before rules: the plain cut
    assert "most probable" in rule.describe() and "0.4" in rule.describe()
    with pytest.raises(InputError, match="threshold"):
        MaskRule(1.0)
    with pytest.raises(InputError, match="components"):
        MaskRule(components="biggest")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="min_peak"):
        MaskRule(0.5, min_peak=0.4)
    assert MaskRule() in candidate_rules() and len(set(candidate_rules())) == len(candidate_rules())


def test_scores_by_hand() -> None:
    reference = np.zeros((20, 20), bool)
    reference[2:8, 2:8] = True  # the lesion is the large faint blob
    normal = np.zeros((20, 20), np.float32)
    normal[0, 0] = 0.45  # a normal image with one pixel between the cuts
    plain, strict, largest = score_rules(
        [(reference, _two_blobs()), (np.zeros((20, 20), bool), normal)],
        [MaskRule(), MaskRule(0.6), MaskRule(0.4, "largest")],
    )
    assert plain.mean_dice == pytest.approx(2 * 36 / (36 + 45)) and plain.normals_with_false_positives == 0
    assert strict.mean_dice == 0.0
    assert largest.mean_dice == 1.0 and largest.normals_with_false_positives == 1
    assert largest.mean_false_positive_fraction == pytest.approx(1 / 400)
    tally = RuleTally([MaskRule(), MaskRule(0.4, "largest")])
    for ref in (reference, np.zeros((20, 20), bool), reference[::-1]):
        tally.add(ref, _two_blobs())
    assert tally.lesion_dice(MaskRule(0.4, "largest")) == [1.0, 0.0]  # lesion images only, in the order added


def test_choice_may_not_add_false_positives_on_normals() -> None:
    def score(rule: MaskRule, dice: float, fp: int) -> RuleScore:
        return RuleScore(rule, 10, dice, 5, fp, 0.01 * fp)

    plain = score(MaskRule(), 0.70, 2)
    greedy = score(MaskRule(0.3), 0.75, 3)  # better Dice, one more normal image with a finding
    tidy = score(MaskRule(components="largest"), 0.72, 1)
    same = score(MaskRule(0.5, "largest", True), 0.72, 1)  # as good, but departs more from the plain cut
    assert choose_rule([plain, greedy, tidy, same]).rule == tidy.rule
    assert choose_rule([plain, greedy]).rule == MaskRule()  # nothing allowed beats it: the plain cut stays
    with pytest.raises(InputError, match="plain"):
        choose_rule([greedy])


def test_tally_from_component_counts_equals_each_masks_own_dice() -> None:
    from scipy import ndimage

    from breastseg.evaluation.metrics import dice

    rng = np.random.default_rng(4)
    rules = candidate_rules()
    for _ in range(3):
        p = ndimage.gaussian_filter(rng.random((90, 110)), 4)
        p = (p - p.min()) / np.ptp(p)
        p[20:50, 20:50] = np.where(p[20:50, 20:50] > 0.35, 0.95, p[20:50, 20:50])  # components with holes
        reference = p > 0.62
        scores = score_rules([(reference, p), (np.zeros_like(reference), p)], rules)
        for rule, score in zip(rules, scores, strict=True):
            mask = rule.apply(p)
            assert score.mean_dice == pytest.approx(dice(mask, reference), abs=1e-12)
            assert score.mean_false_positive_fraction == pytest.approx(mask.mean(), abs=1e-12)
