"""Reader-study tools of the breast-MRI study (Hirsch et al. 2022): each reader — and the network — is scored
against a *leave-one-reader-out consensus*, the intersection of the *other* readers' masks, so no reader is
compared with a reference that contains their own work.

For reader i the reference is ∩_{j≠i} R_j; reader i's Dice is against it, and so is the network's, giving one
network Dice per reference; the network's score per case is the mean over the references (the study's
"averaged over the four references"). Tests per reader: paired Wilcoxon of network vs reader Dice against the
same reference. Equivalence: :func:`breastseg.evaluation.stats.tost_between_readers` with the readers of lowest
and highest median Dice as bounds. With the network's probabilities, the ROC AUC of every voxel against each
reference (pooled over cases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from breastseg.errors import InputError
from breastseg.evaluation.metrics import dice
from breastseg.evaluation.stats import roc_curve, tost_between_readers, wilcoxon


def leave_one_out_consensus(masks: Sequence[np.ndarray], left_out: int) -> np.ndarray:
    """Intersection of every mask but ``masks[left_out]``."""
    others = [np.asarray(m, bool) for j, m in enumerate(masks) if j != left_out]
    if not others:
        raise InputError("a leave-one-reader-out consensus needs at least two readers")
    return np.logical_and.reduce(others)


def reader_study(
    readers: Mapping[str, Sequence[np.ndarray]],
    model: Sequence[np.ndarray],
    model_probability: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Score the readers and the network per case (see the module docstring).

    Args:
        readers: reader name → one mask per case (all readers the same cases, in the same order).
        model: the network's mask per case; ``model_probability`` optionally its probability per case.
    """
    names = list(readers)
    if len(names) < 3:
        raise InputError(f"a reader study needs at least 3 readers (2 to form each reference), got {len(names)}")
    n_cases = len(model)
    if any(len(readers[r]) != n_cases for r in names):
        raise InputError("every reader and the network need a mask for every case")
    reader_dice: dict[str, list[float]] = {r: [] for r in names}
    model_dice: dict[str, list[float]] = {r: [] for r in names}
    pooled: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {r: ([], []) for r in names}
    for c in range(n_cases):
        masks = [np.asarray(readers[r][c], bool) for r in names]
        for i, r in enumerate(names):
            reference = leave_one_out_consensus(masks, i)
            reader_dice[r].append(dice(masks[i], reference))
            model_dice[r].append(dice(np.asarray(model[c], bool), reference))
            if model_probability is not None:
                pooled[r][0].append(reference.ravel())
                pooled[r][1].append(np.asarray(model_probability[c], float).ravel())
    model_mean = np.mean([model_dice[r] for r in names], axis=0)
    medians = {r: float(np.median(reader_dice[r])) for r in names}
    lowest, highest = min(medians, key=medians.__getitem__), max(medians, key=medians.__getitem__)
    per_reader = {}
    for r in names:
        test = wilcoxon(model_dice[r], reader_dice[r])
        entry: dict[str, Any] = {
            "reader_median_dice": medians[r],
            "model_median_dice": float(np.median(model_dice[r])),
            "wilcoxon_statistic": test.statistic,
            "wilcoxon_p": test.p_value,
        }
        if model_probability is not None:
            entry["model_auc"] = roc_curve(np.concatenate(pooled[r][0]), np.concatenate(pooled[r][1])).auc
        per_reader[r] = entry
    tost = tost_between_readers(model_mean, reader_dice[lowest], reader_dice[highest])
    return {
        "cases": n_cases,
        "readers": per_reader,
        "model_median_dice": float(np.median(model_mean)),
        "model_dice_per_case": model_mean.tolist(),
        "reader_dice_per_case": reader_dice,
        "equivalence": {
            "lowest_reader": lowest,
            "highest_reader": highest,
            "p_above_lowest": tost.p_lower,
            "p_below_highest": tost.p_upper,
            "p": tost.p_value,
            "equivalent": tost.equivalent,
        },
    }
