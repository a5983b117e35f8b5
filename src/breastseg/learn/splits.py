"""Patient-level splits: stratified (by tumour type) group (by patient) K-fold, and the study's nested 5 × 5.

Every patient lands in exactly one test fold; within an outer fold's remaining patients, the inner folds give
train/validation pairs. No patient is ever in two of train / validation / test. The split is a function of
the patient list, their types and the seed; every bundle member records its training and validation patients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from breastseg.errors import InputError


def stratified_group_folds(types: Mapping[str, str], n_folds: int, seed: int = 0) -> list[list[str]]:
    """Deal patients to ``n_folds`` folds, each tumour type shuffled and dealt round-robin.

    Args:
        types: patient id → tumour type (the stratum); patients are the groups.

    Returns:
        ``n_folds`` sorted lists of patient ids; sizes differ by at most one per type.
    """
    if n_folds < 2:
        raise InputError(f"need at least 2 folds, got {n_folds}")
    if len(types) < n_folds:
        raise InputError(f"{len(types)} patients cannot fill {n_folds} folds")
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    start = 0
    for stratum in sorted(set(types.values())):
        members = sorted(p for p, t in types.items() if t == stratum)
        for i, k in enumerate(rng.permutation(len(members))):
            folds[(start + i) % n_folds].append(members[k])
        start = (start + len(members)) % n_folds  # the next type continues where this one stopped: balanced sizes
    return [sorted(f) for f in folds]


@dataclass(frozen=True)
class InnerFold:
    train: tuple[str, ...]
    validation: tuple[str, ...]


@dataclass(frozen=True)
class OuterFold:
    test: tuple[str, ...]
    inner: tuple[InnerFold, ...]


def nested_folds(types: Mapping[str, str], outer: int = 5, inner: int = 5, seed: int = 0) -> list[OuterFold]:
    """The study's nested cross-validation: ``outer`` test folds, each with ``inner`` train/validation folds."""
    out = []
    for k, test in enumerate(stratified_group_folds(types, outer, seed)):
        rest = {p: t for p, t in types.items() if p not in set(test)}
        inner_folds = stratified_group_folds(rest, inner, seed + 1000 + k)
        out.append(
            OuterFold(
                test=tuple(test),
                inner=tuple(
                    InnerFold(
                        train=tuple(sorted(p for p in rest if p not in set(val))),
                        validation=tuple(val),
                    )
                    for val in inner_folds
                ),
            )
        )
    return out
