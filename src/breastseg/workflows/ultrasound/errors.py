"""Error analysis of a cross-validation: the worst lesion images by Dice, each with the geometry of its failure.

Each image is predicted again by its fold's model (the one that never saw it) and its failure named by
:func:`failure_cause`, from the prediction against the reference alone:

* ``missed``: nothing predicted;
* ``wrong structure``: something predicted, none of it on the lesion;
* ``wrong structure beside the lesion``: the prediction touches the lesion, but most of its area lies in
  components that do not;
* ``lesion split``: more predicted components on the lesion than the reference has;
* ``too tight``: under half of the lesion found, what was found mostly right (recall < 0.5 ≤ precision);
* ``too loose``: the lesion found but the outline leaks (precision < 0.5 ≤ recall);
* ``loose and tight``: both under half; ``outline off``: both at least half (a near miss of the outline).

Image-level traits beside it (:class:`FailureReview`): the lesion's share of the image, whether the lesion
touches the image's edge (cut by the field of view), several reference components (multifocal), and a colour
overlay burnt into the image (coloured calipers, region-of-interest marks or Doppler: the file has pixels whose
red, green and blue differ). What geometry cannot see (axillary views, annotation doubt, grey calipers and text)
is for a reader looking at :func:`example_sheet`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.evaluation.stats import wilcoxon
from breastseg.io.raster import read_pixels
from breastseg.masks import label_components
from breastseg.workflows.ultrasound.crossval import ImageScore, out_of_fold_probabilities, read_cv_scores
from breastseg.workflows.ultrasound.dataset import UltrasoundCase
from breastseg.workflows.ultrasound.postprocess import MaskRule, RuleScore, RuleTally, candidate_rules, choose_rule

CAUSES = (
    "missed",
    "wrong structure",
    "wrong structure beside the lesion",
    "lesion split",
    "too tight",
    "too loose",
    "loose and tight",
    "outline off",
)
REVIEW_COLUMNS = (
    "case_id",
    "label",
    "fold",
    "dice",
    "cause",
    "recall",
    "precision",
    "lesion_fraction",
    "reference_components",
    "predicted_components",
    "lesion_touches_edge",
    "colour_overlay",
)


def failure_cause(reference: np.ndarray, prediction: np.ndarray) -> str:
    """The geometry of one failed prediction (one of :data:`CAUSES`; see the module docstring)."""
    ref = np.asarray(reference, bool)
    pred = np.asarray(prediction, bool)
    if not pred.any():
        return "missed"
    overlap = int((ref & pred).sum())
    if overlap == 0:
        return "wrong structure"
    labels, _ = label_components(pred, 8)
    on_lesion = np.unique(labels[ref & pred])
    off_area = int(pred.sum()) - int(np.isin(labels, on_lesion).sum())
    if off_area > 0.5 * pred.sum():
        return "wrong structure beside the lesion"
    recall = overlap / ref.sum()
    precision = overlap / pred.sum()
    if len(on_lesion) > label_components(ref, 8)[1]:
        return "lesion split"
    if recall < 0.5 <= precision:
        return "too tight"
    if precision < 0.5 <= recall:
        return "too loose"
    return "loose and tight" if recall < 0.5 else "outline off"


def has_colour_overlay(path: Path, tolerance: int = 8) -> bool:
    """Whether the image file holds pixels whose red, green and blue differ by more than ``tolerance``."""
    pixels = np.asarray(read_pixels(path), np.int16)
    if pixels.ndim != 3 or pixels.shape[-1] < 3:
        return False
    rgb = pixels[..., :3]
    return bool((rgb.max(axis=-1) - rgb.min(axis=-1) > tolerance).any())


@dataclass(frozen=True)
class FailureReview:
    """One reviewed image: its score, the cause of its failure and the image-level traits (module docstring)."""

    case_id: str
    label: str | None
    fold: int
    dice: float
    cause: str
    recall: float
    precision: float | None
    lesion_fraction: float
    reference_components: int
    predicted_components: int
    lesion_touches_edge: bool
    colour_overlay: bool

    def row(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in REVIEW_COLUMNS}
        for name in ("dice", "recall", "precision", "lesion_fraction"):
            if out[name] is not None:
                out[name] = round(float(out[name]), 4)
        return out


def review_image(
    case: UltrasoundCase, score: ImageScore, reference: np.ndarray, prediction: np.ndarray
) -> FailureReview:
    """One worst image's :class:`FailureReview` (``prediction`` as its fold's model made it)."""
    ref = np.asarray(reference, bool)
    edge = bool(ref[0].any() or ref[-1].any() or ref[:, 0].any() or ref[:, -1].any())
    return FailureReview(
        case_id=case.case_id,
        label=case.label,
        fold=score.fold,
        dice=float(score.dice or 0.0),
        cause=failure_cause(ref, prediction),
        recall=float(score.recall or 0.0),
        precision=score.precision,
        lesion_fraction=float(ref.mean()),
        reference_components=label_components(ref, 8)[1],
        predicted_components=label_components(prediction, 8)[1],
        lesion_touches_edge=edge,
        colour_overlay=has_colour_overlay(case.image_path),
    )


def worst_lesion_images(scores: Sequence[ImageScore], fraction: float = 0.1) -> list[ImageScore]:
    """The ``fraction`` of lesion images with the lowest Dice (at least one), worst first (ties by case id)."""
    lesion = [s for s in scores if s.tp + s.fn > 0]
    n = max(1, math.ceil(fraction * len(lesion)))
    return sorted(lesion, key=lambda s: (s.dice or 0.0, s.case_id))[:n]


def cause_table(reviews: Sequence[FailureReview]) -> list[dict[str, Any]]:
    """Per cause: images, benign / malignant, mean Dice, and how many have each image-level trait."""
    rows = []
    counts = Counter(r.cause for r in reviews)
    for cause in CAUSES:
        group = [r for r in reviews if r.cause == cause]
        if not group:
            continue
        rows.append(
            {
                "cause": cause,
                "images": counts[cause],
                "benign": sum(r.label == "benign" for r in group),
                "malignant": sum(r.label == "malignant" for r in group),
                "mean_dice": round(float(np.mean([r.dice for r in group])), 3),
                "median_lesion_fraction": round(float(np.median([r.lesion_fraction for r in group])), 4),
                "lesion_touches_edge": sum(r.lesion_touches_edge for r in group),
                "multifocal_reference": sum(r.reference_components > 1 for r in group),
                "colour_overlay": sum(r.colour_overlay for r in group),
            }
        )
    return rows


def cause_chart(reviews: Sequence[FailureReview], all_lesion_dice: Sequence[float], path: str | Path) -> Path:
    """Two panels, no image pixels: the per-image Dice histogram of every lesion image with the reviewed
    worst share shaded, and the reviewed images per cause (benign / malignant stacked)."""
    import matplotlib.pyplot as plt

    from breastseg.report.figures import save_figure

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.25]})
    values = np.sort(np.asarray(all_lesion_dice, float))  # the reviewed are the lowest (ties as they were broken)
    bins = np.linspace(0, 1, 41)
    left.hist(
        [values[: len(reviews)], values[len(reviews) :]],
        bins=bins,
        stacked=True,
        color=["#de2d26", "#9ecae1"],
        label=[f"worst {len(reviews)} (reviewed)", "other lesion images"],
    )
    left.set_xlabel("Dice per image")
    left.set_ylabel("images")
    left.set_title(f"{values.size} lesion images, out of fold", fontsize=10)
    left.legend(fontsize=8, frameon=False)
    causes = [c for c in CAUSES if any(r.cause == c for r in reviews)][::-1]
    benign = [sum(r.cause == c and r.label == "benign" for r in reviews) for c in causes]
    malignant = [sum(r.cause == c and r.label == "malignant" for r in reviews) for c in causes]
    right.barh(causes, benign, color="#6baed6", label="benign")
    right.barh(causes, malignant, left=benign, color="#fd8d3c", label="malignant")
    right.set_xlabel("images")
    right.set_title("cause of the failure", fontsize=10)
    right.legend(fontsize=8, frameon=False, loc="lower right")
    return save_figure(fig, path, dpi=110)


def example_sheet(
    examples: Iterable[tuple[FailureReview, np.ndarray, np.ndarray, np.ndarray]], path: str | Path, columns: int = 6
) -> Path:
    """A contact sheet of reviewed images: each image with the reference outlined green and the prediction
    orange, titled with its case, cause and Dice (for a reader; it shows the dataset's pixels)."""
    import matplotlib.pyplot as plt

    from breastseg.report.figures import save_figure
    from breastseg.workflows.ultrasound.predict import REFERENCE_RGB, overlay_rgb

    items = list(examples)
    rows = max(1, math.ceil(len(items) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.5 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (review, image, reference, prediction) in zip(axes.ravel(), items, strict=False):
        rgb = overlay_rgb(image, prediction)
        outline = overlay_rgb(np.zeros(reference.shape, np.float32), reference, REFERENCE_RGB)
        edge = outline.any(axis=-1)
        rgb[edge] = outline[edge]
        ax.imshow(rgb)
        ax.set_title(f"{review.case_id}\n{review.cause}, Dice {review.dice:.2f}", fontsize=7)
    return save_figure(fig, path, dpi=90)


@dataclass(eq=False)
class CvAnalysis:
    """What one pass over a cross-validation's out-of-fold predictions found: every mask rule's score (and the
    chosen one, :func:`~breastseg.workflows.ultrasound.postprocess.choose_rule`), the worst images reviewed, and
    their pixels for :func:`example_sheet`."""

    rule_scores: list[RuleScore]
    chosen: RuleScore
    plain: RuleScore  # the plain 0.5 cut, the reference of the choice
    chosen_vs_plain_p: float  # paired Wilcoxon signed-rank p of the lesion images' Dice, chosen rule vs 0.5 cut
    reviews: list[FailureReview]
    lesion_dice: list[float]
    examples: list[tuple[FailureReview, np.ndarray, np.ndarray, np.ndarray]]


def analyse_cv(
    cv_dir: str | Path,
    cases: Sequence[UltrasoundCase],
    fraction: float = 0.1,
    flip: bool = True,
    rules: Sequence[MaskRule] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CvAnalysis:
    """Predict every test image of ``cv_dir`` again with its fold's model (:func:`out_of_fold_probabilities`);
    score the candidate mask rules on all of them and review the worst ``fraction`` of lesion images by their
    recorded Dice, each with the mask its fold's model makes (its own rule, as when the CV scored it)."""
    scores = read_cv_scores(cv_dir)
    worst = {s.case_id for s in worst_lesion_images(scores, fraction)}
    by_id = {c.case_id: c for c in cases}
    tally = RuleTally(rules if rules is not None else candidate_rules())
    reviews: list[FailureReview] = []
    examples = []
    oof = out_of_fold_probabilities(cv_dir, cases, flip)
    for i, (score, fold_rule, image, reference, probability) in enumerate(oof):
        tally.add(reference, probability)
        if score.case_id in worst:
            prediction = fold_rule.apply(probability)
            review = review_image(by_id[score.case_id], score, reference, prediction)
            reviews.append(review)
            examples.append((review, image, reference, prediction))
        if progress is not None:
            progress(i + 1, len(scores))
    order = sorted(range(len(reviews)), key=lambda j: (reviews[j].dice, reviews[j].case_id))
    rule_scores = tally.scores()
    chosen = choose_rule(rule_scores)
    return CvAnalysis(
        rule_scores,
        chosen,
        next(s for s in rule_scores if s.rule == MaskRule()),
        wilcoxon(tally.lesion_dice(MaskRule()), tally.lesion_dice(chosen.rule)).p_value,
        [reviews[j] for j in order],
        [float(s.dice or 0.0) for s in scores if s.tp + s.fn > 0],
        [examples[j] for j in order],
    )
