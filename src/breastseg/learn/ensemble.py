"""Ensembles of networks trained on cross-validation folds, and the study's leakage guard.

Every member records the patients it was trained and validated on, so that an ensemble predicting a patient can
leave out the members that saw that patient (the specimen study's rule; the PET/CT workflow's baseline network
uses the same guard). A workflow's model format may extend :class:`Member` with what its members carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from breastseg.errors import ModelError


@dataclass(eq=False)
class Member:
    """One trained network of an ensemble: its weights and the patients it learnt from."""

    state_dict: dict[str, torch.Tensor]
    training_patients: tuple[str, ...]
    validation_patients: tuple[str, ...] = ()
    fold: str = ""
    best_validation_dice: float | None = None


M = TypeVar("M", bound=Member)


def independent_members(members: Sequence[M], exclude_patient: str | None, validation_counts: bool = True) -> list[M]:
    """The members that neither trained nor validated on ``exclude_patient`` (all of them for ``None``).

    ``validation_counts=False``: a member is independent of its validation patients — right when validation only
    watched training (a fixed schedule, the last epoch kept) and chose nothing, as in nnU-Net-style K-fold CV,
    where the validation fold *is* the held-out fold.

    Raises:
        ModelError: every member saw that patient (nothing independent is left to predict with).
    """

    def saw(m: M) -> tuple[str, ...]:
        return (*m.training_patients, *m.validation_patients) if validation_counts else m.training_patients

    chosen = [m for m in members if exclude_patient is None or exclude_patient not in saw(m)]
    if not chosen:
        raise ModelError(f"every member of the model was trained on patient {exclude_patient!r}")
    return chosen
