"""A cross-validation split of an ultrasound dataset that keeps near-duplicates together, recorded as a file.

Steps: hash every image (:mod:`breastseg.learn.duplicates`), group near-duplicates, give each group a stratum
(its class; ``benign+malignant`` for a group whose copies carry both labels, like BUSI's ``benign (433)`` =
``malignant (145)``), deal the groups to folds stratified by that stratum
(:func:`breastseg.learn.splits.stratified_group_folds`), and write everything — folds, groups, the links and
their distances, the hash settings — to one JSON file that training and evaluation then read, as nnU-Net keeps
``splits_final.json`` beside its results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breastseg.errors import InputError
from breastseg.io.atomic import write_json
from breastseg.learn.duplicates import (
    DHASH_MAX_DISTANCE,
    HASH_SIZE,
    PHASH_MAX_DISTANCE,
    DuplicateLink,
    duplicate_groups,
    image_hashes,
)
from breastseg.learn.splits import stratified_group_folds
from breastseg.workflows.ultrasound.dataset import UltrasoundCase, load_case

SPLIT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DatasetSplit:
    """Folds of case ids (each case in exactly one), the duplicate group of every case, and how it was made."""

    folds: tuple[tuple[str, ...], ...]
    groups: dict[str, int]
    labels: dict[str, str | None]
    links: tuple[DuplicateLink, ...]
    case_ids: tuple[str, ...]
    seed: int
    phash_max: int
    dhash_max: int

    def fold_of(self, case_id: str) -> int:
        for k, fold in enumerate(self.folds):
            if case_id in fold:
                return k
        raise KeyError(case_id)

    def train_test(self, k: int) -> tuple[list[str], list[str]]:
        """Case ids for training and testing in fold ``k`` (test = fold ``k``, train = all other folds)."""
        test = list(self.folds[k])
        return [c for j, fold in enumerate(self.folds) if j != k for c in fold], test

    def conflicts(self) -> list[list[str]]:
        """Duplicate groups whose cases carry more than one class label (label noise to know about)."""
        members: dict[int, list[str]] = {}
        for case, g in self.groups.items():
            members.setdefault(g, []).append(case)
        return [
            sorted(cases)
            for cases in members.values()
            if len({self.labels[c] for c in cases if self.labels[c] is not None}) > 1
        ]

    def as_dict(self) -> dict[str, Any]:
        ids = self.case_ids
        return {
            "schema_version": SPLIT_SCHEMA_VERSION,
            "what": "cross-validation folds grouped by near-duplicate cluster, stratified by class",
            "n_folds": len(self.folds),
            "seed": self.seed,
            "hash": {
                "kinds": ["phash", "dhash"],
                "hash_size": HASH_SIZE,
                "phash_max": self.phash_max,
                "dhash_max": self.dhash_max,
            },
            "n_cases": len(ids),
            "n_groups": len(set(self.groups.values())),
            "folds": [list(f) for f in self.folds],
            "groups": self.groups,
            "labels": self.labels,
            "label_conflicts": self.conflicts(),
            "links": [
                {"a": ids[lk.first], "b": ids[lk.second], "phash": lk.phash_distance, "dhash": lk.dhash_distance}
                for lk in self.links
            ],
        }


def _stratum(labels: Sequence[str | None]) -> str:
    known = sorted({lb for lb in labels if lb is not None})
    return "+".join(known) if known else "unlabelled"


def make_split(
    cases: Sequence[UltrasoundCase],
    n_folds: int = 5,
    seed: int = 0,
    phash_max: int = PHASH_MAX_DISTANCE,
    dhash_max: int = DHASH_MAX_DISTANCE,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetSplit:
    """Hash, group and deal ``cases`` into ``n_folds`` folds (see the module docstring)."""
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise InputError(f"case ids must be unique; repeated: {', '.join(dup[:5])}")
    hashes = []
    for i, case in enumerate(cases):
        image, _ = load_case(case)
        hashes.append(image_hashes(image))
        if progress is not None:
            progress(i + 1, len(cases))
    group_of, links = duplicate_groups(hashes, phash_max, dhash_max)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group_of):
        members.setdefault(g, []).append(i)
    strata = {f"g{g}": _stratum([cases[i].label for i in idx]) for g, idx in members.items()}
    group_folds = stratified_group_folds(strata, n_folds, seed)
    folds = tuple(tuple(sorted(ids[i] for name in fold for i in members[int(name[1:])])) for fold in group_folds)
    return DatasetSplit(
        folds=folds,
        groups={ids[i]: g for i, g in enumerate(group_of)},
        labels={c.case_id: c.label for c in cases},
        links=tuple(links),
        case_ids=tuple(ids),
        seed=seed,
        phash_max=phash_max,
        dhash_max=dhash_max,
    )


def write_split(split: DatasetSplit, path: str | Path) -> Path:
    """Write the split file (atomically)."""
    return write_json(split.as_dict(), Path(path))


def read_split_folds(path: str | Path) -> list[list[str]]:
    """The folds (lists of case ids) of a split file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        folds = doc["folds"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a breastseg split file ({exc})") from exc
    return [list(map(str, f)) for f in folds]
