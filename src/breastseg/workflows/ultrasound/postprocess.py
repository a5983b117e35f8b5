"""From a lesion-probability map to the mask, with the rule chosen on the cross-validation's out-of-fold
probabilities (nnU-Net's way of deciding its post-processing, as the PET/CT workflow does).

A :class:`MaskRule` cuts the probability (``≥ threshold``), optionally drops the connected components (8-connected)
whose peak probability stays below ``min_peak`` (a low cut then fills out confident lesions without keeping faint
shadows), optionally keeps one component — the largest by area, or the most probable (the largest sum of
probability, so a small confident lesion beats a large faint shadow) — and optionally fills the mask's holes.
:func:`choose_rule` scores every rule of :func:`candidate_rules` on the same out-of-fold probabilities and keeps
the best mean Dice of the lesion images, among the rules that put false-positive pixels on no more normal images
than the plain ``≥ 0.5`` cut does (a rule may not buy lesion Dice with findings on normal images); ties keep the
simpler rule, so a rule is adopted only when it improves the cross-validation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.masks import fill_holes, label_components

Components = Literal["all", "largest", "most_probable"]
COMPONENT_RULES: tuple[Components, ...] = ("all", "largest", "most_probable")
THRESHOLDS = (0.3, 0.4, 0.5, 0.6)
MIN_PEAKS = (None, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class MaskRule:
    """Probability ``(y, x)`` in [0, 1] → lesion mask ``(y, x)`` bool (see the module docstring)."""

    threshold: float = 0.5
    components: Components = "all"
    fill_holes: bool = False
    min_peak: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise InputError(f"mask threshold must lie in (0, 1), got {self.threshold}")
        if self.min_peak is not None and not self.threshold <= self.min_peak <= 1.0:
            raise InputError(f"min_peak must lie in [threshold, 1], got {self.min_peak}")
        if self.components not in COMPONENT_RULES:
            raise InputError(f"components must be one of {', '.join(COMPONENT_RULES)}, got {self.components!r}")

    def apply(self, probability: np.ndarray, cut: Cut | None = None) -> np.ndarray:
        """The mask; ``cut``: this threshold's :class:`Cut` of the same map, when already made."""
        if cut is None or cut.threshold != self.threshold:
            cut = Cut.of(probability, self.threshold)
        mask = self.kept(cut)[cut.labels]
        return fill_holes(mask) if self.fill_holes else mask

    def kept(self, cut: Cut) -> np.ndarray:
        """Which labels of ``cut`` the mask keeps (index 0, the background, never), before holes are filled."""
        keep = np.ones(cut.count + 1, bool)
        keep[0] = False
        if self.min_peak is not None:
            keep &= cut.peak >= self.min_peak
        if self.components != "all" and keep.sum() > 1:
            weight = (cut.area if self.components == "largest" else cut.mass).astype(float)
            weight[~keep] = -1.0
            keep = np.arange(cut.count + 1) == int(np.argmax(weight))
        return keep

    @property
    def complexity(self) -> int:
        """How much the rule departs from the plain 0.5 cut (ties go to the lower)."""
        return (
            int(self.threshold != 0.5)
            + int(self.components != "all")
            + int(self.fill_holes)
            + int(self.min_peak is not None)
        )

    def describe(self) -> str:
        parts = [f"probability ≥ {self.threshold:g}"]
        if self.min_peak is not None:
            parts.append(f"components peaking below {self.min_peak:g} dropped")
        if self.components != "all":
            parts.append(f"the {self.components.replace('_', ' ')} component kept")
        if self.fill_holes:
            parts.append("holes filled")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> MaskRule:
        """The rule a model file stores; a file without one (older models) cuts at 0.5."""
        if not doc:
            return cls()
        peak = doc.get("min_peak")
        return cls(
            float(doc["threshold"]),
            doc.get("components", "all"),
            bool(doc.get("fill_holes", False)),
            None if peak is None else float(peak),
        )


@dataclass(frozen=True, eq=False)
class Cut:
    """A probability map cut at ``threshold``: its components (8-connected, labels ``1..count``) and, per label
    (index 0 the background), the area in pixels, the sum of probability and the peak probability."""

    threshold: float
    labels: np.ndarray
    count: int
    area: np.ndarray
    mass: np.ndarray
    peak: np.ndarray
    has_holes: bool  # whether filling holes changes the cut (if not, it changes no subset of its components)

    @classmethod
    def of(cls, probability: np.ndarray, threshold: float) -> Cut:
        prob = np.asarray(probability, np.float32)
        labels, n = label_components(prob >= threshold, 8)
        flat = labels.ravel()
        peak = np.zeros(n + 1, np.float32)
        for i, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is not None:
                peak[i] = prob[box][labels[box] == i].max()
        area = np.bincount(flat, minlength=n + 1)
        mass = np.bincount(flat, weights=prob.ravel(), minlength=n + 1)
        mask = labels > 0
        return cls(threshold, labels, n, area, mass, peak, bool(fill_holes(mask).sum() > area[1:].sum()))


def candidate_rules() -> list[MaskRule]:
    """Every threshold of :data:`THRESHOLDS` × peak of :data:`MIN_PEAKS` × component rule × holes filled or not."""
    return [
        MaskRule(t, c, h, m)
        for t in THRESHOLDS
        for m in MIN_PEAKS
        for c in COMPONENT_RULES
        for h in (False, True)
        if m is None or m >= t
    ]


@dataclass(frozen=True)
class RuleScore:
    """One rule on the out-of-fold probabilities: lesion images' mean Dice, normal images with any
    false-positive pixel, and their mean false-positive fraction of the image."""

    rule: MaskRule
    lesion_images: int
    mean_dice: float
    normals: int
    normals_with_false_positives: int
    mean_false_positive_fraction: float

    def row(self) -> dict[str, Any]:
        return {
            "rule": self.rule.describe(),
            **self.rule.to_json(),
            "lesion_images": self.lesion_images,
            "mean_dice": round(self.mean_dice, 4),
            "normals": self.normals,
            "normals_with_false_positives": self.normals_with_false_positives,
            "mean_false_positive_fraction": round(self.mean_false_positive_fraction, 5),
        }


class RuleTally:
    """Scores of several rules accumulated one image at a time (so probability maps need not be kept)."""

    def __init__(self, rules: Sequence[MaskRule]) -> None:
        self.rules = list(rules)
        self._dice: list[list[float]] = [[] for _ in self.rules]
        self._fp: list[list[float]] = [[] for _ in self.rules]

    def add(self, reference: np.ndarray, probability: np.ndarray) -> None:
        """One image: its reference mask and probability, on the image's own grid."""
        ref = np.asarray(reference, bool)
        lesion = int(ref.sum())
        cuts = {t: Cut.of(probability, t) for t in {r.threshold for r in self.rules}}
        on_lesion = {t: np.bincount(c.labels[ref], minlength=c.count + 1) for t, c in cuts.items()}
        for i, rule in enumerate(self.rules):
            cut = cuts[rule.threshold]
            if rule.fill_holes and cut.has_holes:
                mask = rule.apply(probability, cut)
                overlap, area = int((mask & ref).sum()), int(mask.sum())
            else:  # from the components' counts: the same numbers without making the mask
                keep = rule.kept(cut)
                overlap, area = int(on_lesion[rule.threshold][keep].sum()), int(cut.area[keep].sum())
            if lesion:
                self._dice[i].append(2.0 * overlap / (area + lesion))
            else:
                self._fp[i].append(area / ref.size)

    def lesion_dice(self, rule: MaskRule) -> list[float]:
        """Per lesion image, in the order added, the Dice ``rule`` gives (for paired tests between rules)."""
        return list(self._dice[self.rules.index(rule)])

    def scores(self) -> list[RuleScore]:
        if not self._dice or not self._dice[0]:
            raise InputError("choosing a mask rule needs images with a lesion")
        return [
            RuleScore(rule, len(d), float(np.mean(d)), len(f), sum(v > 0 for v in f), float(np.mean(f)) if f else 0.0)
            for rule, d, f in zip(self.rules, self._dice, self._fp, strict=True)
        ]


def score_rules(probabilities: Iterable[tuple[np.ndarray, np.ndarray]], rules: Sequence[MaskRule]) -> list[RuleScore]:
    """Each rule on ``(reference, probability)`` pairs (one per image, on the image's own grid)."""
    tally = RuleTally(rules)
    for reference, probability in probabilities:
        tally.add(reference, probability)
    return tally.scores()


def choose_rule(scores: Sequence[RuleScore]) -> RuleScore:
    """The best mean lesion Dice among rules with no more normals with false positives than the plain cut."""
    plain = next((s for s in scores if s.rule == MaskRule()), None)
    if plain is None:
        raise InputError("the candidate rules must include the plain 0.5 cut, the reference of the choice")
    allowed = [s for s in scores if s.normals_with_false_positives <= plain.normals_with_false_positives]
    return max(allowed, key=lambda s: (round(s.mean_dice, 4), -s.rule.complexity))
