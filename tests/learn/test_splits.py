"""Nested, stratified, grouped splits: every invariant the study's protocol needs."""

from __future__ import annotations

from collections import Counter

import pytest

from breastseg.errors import InputError
from breastseg.learn.splits import nested_folds, stratified_group_folds

TYPES = {f"p{i:02d}": t for i, t in enumerate(["NST"] * 19 + ["ILC"] * 6 + ["DCIS"] * 3)}  # the study's 28


def test_every_patient_in_exactly_one_fold_and_types_balanced() -> None:
    folds = stratified_group_folds(TYPES, 5, seed=1)
    flat = [p for f in folds for p in f]
    assert sorted(flat) == sorted(TYPES) and len(flat) == len(set(flat))
    for t in ("NST", "ILC", "DCIS"):
        per_fold = [sum(TYPES[p] == t for p in f) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, (t, per_fold)
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    assert folds == stratified_group_folds(TYPES, 5, seed=1)
    assert folds != stratified_group_folds(TYPES, 5, seed=2)


def test_nested_5x5_never_shares_a_patient() -> None:
    outer = nested_folds(TYPES, 5, 5, seed=0)
    assert len(outer) == 5 and all(len(o.inner) == 5 for o in outer)
    assert Counter(p for o in outer for p in o.test) == Counter(list(TYPES))
    for o in outer:
        rest = set(TYPES) - set(o.test)
        seen_in_validation = Counter()
        for fold in o.inner:
            train, val = set(fold.train), set(fold.validation)
            assert not train & val and not (train | val) & set(o.test)
            assert train | val == rest
            seen_in_validation.update(val)
        assert set(seen_in_validation) == rest and set(seen_in_validation.values()) == {1}


def test_too_few_patients() -> None:
    with pytest.raises(InputError, match="cannot fill"):
        stratified_group_folds({"a": "NST", "b": "NST"}, 5)
