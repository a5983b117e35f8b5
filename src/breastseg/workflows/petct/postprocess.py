"""Post-processing of predicted lesion masks: drop findings that stand out from nothing, with the strictness chosen
on the cross-validation predictions (nnU-Net's way of deciding its post-processing).

A predicted lesion (a 26-connected component) is **distinct** when its mean uptake exceeds its local background by
at least ``min_contrast``: contrast = mean SUV of the component / median SUV of a shell around it — the voxels
between ``gap_mm`` and ``gap_mm + shell_mm`` from the component, inside the body, and more than ``gap_mm`` from any
predicted voxel (the gap skips the partial-volume halo; other findings and their halos are not background).
A component without background voxels is kept. A reader reports a lesion only where uptake is distinguishable from
the surrounding background (PERCIST 1.0's wording for a complete metabolic response); a network given the baseline
mask as a channel can instead mark normal tissue where a lesion has resolved — a region of liver at liver uptake
is not a lesion, however its SULpeak compares with the liver mean.

:func:`choose_min_contrast` evaluates each threshold of :data:`CANDIDATES` (and none) on out-of-fold predictions
against their references and keeps the one with the best lesion-detection F1 (the study's 50 % rules), then the
best global Dice; ties keep the milder rule, so a filter is adopted only when it improves the cross-validation.
It refuses to choose on degenerate predictions — one that covers more than a fifth of its scan's body, or none
holding any lesion at all — where every threshold's score measures the network's failure, not the filter: the
choice is then "none", with the reason stored beside it (the model card prints it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import edt
import numpy as np
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.masks import label_components
from breastseg.workflows.petct.evaluate import MAX_BODY_FRACTION, score_scan, summarise_scans

CANDIDATES = (1.05, 1.1, 1.2, 1.3, 1.5)
SHELL_MM = 10.0


@dataclass(frozen=True)
class ComponentContrast:
    """One predicted component: ``label`` in the labelling, size, mean SUV and the shell's median SUV."""

    label: int
    voxels: int
    mean_suv: float
    background_suv: float | None  # None: no background voxel around it

    @property
    def contrast(self) -> float:
        """Mean SUV / background SUV (∞ without a positive background)."""
        if self.background_suv is None or self.background_suv <= 0:
            return math.inf
        return self.mean_suv / self.background_suv

    def row(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "voxels": self.voxels,
            "mean_suv": round(self.mean_suv, 4),
            "background_suv": None if self.background_suv is None else round(self.background_suv, 4),
            "contrast": None if math.isinf(self.contrast) else round(self.contrast, 4),
        }


@dataclass(eq=False)
class Components:
    """A mask's components (labels ``1..n`` in ``labels``) and their contrasts."""

    labels: np.ndarray
    contrasts: list[ComponentContrast]

    def kept(self, min_contrast: float | None) -> np.ndarray:
        """The mask without the components below ``min_contrast`` (``None``: all kept)."""
        if min_contrast is None:
            return self.labels > 0
        keep = np.zeros(len(self.contrasts) + 1, bool)
        for c in self.contrasts:
            keep[c.label] = c.contrast >= min_contrast
        return keep[self.labels]

    def removed(self, min_contrast: float | None) -> list[ComponentContrast]:
        return [] if min_contrast is None else [c for c in self.contrasts if c.contrast < min_contrast]


def default_gap_mm(spacing: Sequence[float]) -> float:
    """The halo skipped around a component: one voxel's largest side (mm)."""
    return float(max(spacing))


def component_contrasts(
    suv: np.ndarray,
    mask: np.ndarray,
    spacing: Sequence[float],
    body: np.ndarray | None = None,
    gap_mm: float | None = None,
    shell_mm: float = SHELL_MM,
) -> Components:
    """The contrast of every 26-connected component of ``mask`` over its shell (see the module docstring).

    Args:
        suv: SUV, array order ``(z, y, x)``; mask, body: boolean arrays of the same shape (``body`` ``None``:
            everywhere is body).
        spacing: voxel size ``(z, y, x)`` mm.
        gap_mm: the halo skipped (default: :func:`default_gap_mm`); shell_mm: the shell's thickness.
    """
    suv, mask = np.asarray(suv, np.float32), np.asarray(mask, bool)
    if suv.shape != mask.shape or (body is not None and np.shape(body) != mask.shape):
        raise InputError(f"SUV {suv.shape}, mask {mask.shape} and body must share one grid")
    spacing = tuple(float(s) for s in spacing)
    gap = default_gap_mm(spacing) if gap_mm is None else float(gap_mm)
    reach = gap + shell_mm
    labels, _ = label_components(mask, 26)
    margin = [math.ceil(reach / s) + 1 for s in spacing]
    out = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        grown = tuple(
            slice(max(0, b.start - m), min(n, b.stop + m)) for b, m, n in zip(box, margin, mask.shape, strict=True)
        )
        component = labels[grown] == index
        to_component = edt.edt(~component, anisotropy=spacing, black_border=False)
        to_any = edt.edt(~mask[grown], anisotropy=spacing, black_border=False)
        shell = (to_component <= reach) & (to_any > gap)
        if body is not None:
            shell &= np.asarray(body[grown], bool)
        values = suv[grown]
        background = float(np.median(values[shell])) if shell.any() else None
        out.append(ComponentContrast(index, int(component.sum()), float(values[component].mean()), background))
    return Components(labels, out)


@dataclass(frozen=True)
class ContrastCase:
    """One out-of-fold prediction: its components and the reference mask on the same grid."""

    case: str
    components: Components
    reference: np.ndarray
    spacing: tuple[float, float, float]
    body: np.ndarray | None = None


def _score(cases: Sequence[ContrastCase], min_contrast: float | None) -> dict[str, Any]:
    """Every case scored as ``petct evaluate`` scores it, pooled; F1 of the pooled lesion recall and precision."""
    scores = [score_scan(c.case, c.components.kept(min_contrast), c.reference, c.spacing, c.body) for c in cases]
    pooled = summarise_scans(scores)
    recall, precision = pooled.lesion_recall, pooled.lesion_precision
    if recall is None:
        f1 = None  # no reference lesion
    elif not recall or not precision:
        f1 = 0.0
    else:
        f1 = 2 * recall * precision / (recall + precision)
    return {
        "min_contrast": min_contrast,
        "components_removed": sum(len(c.components.removed(min_contrast)) for c in cases),
        "lesion_recall": recall,
        "lesion_precision": precision,
        "lesion_f1": f1,
        "global_dice": pooled.global_dice,
    }


@dataclass(frozen=True)
class ContrastChoice:
    """The chosen threshold (``None``: no filter) and every candidate's cross-validation scores."""

    min_contrast: float | None
    table: list[dict[str, Any]]
    refused: str | None = None  # why nothing was chosen on these predictions (degenerate), else None

    def to_json(self) -> dict[str, Any]:
        doc = {"rule": "min_contrast", "min_contrast": self.min_contrast, "shell_mm": SHELL_MM, "cv": self.table}
        return {**doc, "refused": self.refused} if self.refused else doc


def degenerate_predictions(cases: Sequence[ContrastCase]) -> str | None:
    """Why these out-of-fold predictions cannot choose a post-processing (see the module docstring), else None."""
    scores = [score_scan(c.case, c.components.kept(None), c.reference, c.spacing, c.body) for c in cases]
    blobs = [s for s in scores if s.degenerate]
    if blobs:
        worst = max(blobs, key=lambda s: s.body_fraction)
        return (
            f"the out-of-fold predictions of {len(blobs)} of {len(scores)} scans cover more than "
            f"{100 * MAX_BODY_FRACTION:.0f} % of the body ({worst.case}: {100 * worst.body_fraction:.0f} %): the "
            "network has not learnt to find lesions (train longer, or check the inputs); no post-processing chosen "
            "on them"
        )
    if not any(s.tp_voxels + s.fp_voxels for s in scores):
        return "no out-of-fold prediction marks any voxel: no post-processing can be chosen on them"
    return None


def choose_min_contrast(cases: Sequence[ContrastCase], candidates: Sequence[float] = CANDIDATES) -> ContrastChoice:
    """The threshold with the best lesion F1, then global Dice, over ``cases``; ties keep the milder (see the module
    docstring). No reference lesion anywhere: no filter."""
    if not cases:
        raise InputError("no cross-validation predictions to choose the post-processing on")
    refused = degenerate_predictions(cases)
    if refused is not None:
        return ContrastChoice(None, [_score(cases, None)], refused)
    table = [_score(cases, t) for t in (None, *sorted(candidates))]

    def key(row: dict[str, Any]) -> tuple[float, float]:
        return (row["lesion_f1"] or 0.0, row["global_dice"] or 0.0)

    best = table[0]
    for row in table[1:]:
        if key(row) > key(best):
            best = row
    return ContrastChoice(best["min_contrast"], table)
