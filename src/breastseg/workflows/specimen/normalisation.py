"""Input normalisation of the specimen networks, stored with every model.

CT is absolute: min-max scaled between the 5th and 95th percentiles of the pooled foreground (tissue) HU of the
*training* images. PET is relative: scaled between 0 and 80 % of the patient's (or specimen's) SUL maximum.
Both are clipped to [0, 1] (clipping keeps metal wires from dominating the CT channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from breastseg.errors import InputError, ModelError

CHANNEL_SETS = {"ct": ("ct",), "pet": ("pet",), "petct": ("ct", "pet")}


@dataclass(frozen=True)
class Normalisation:
    """How raw CT (HU) and PET (SUL) become network channels in [0, 1]."""

    channels: tuple[str, ...]
    ct_low_hu: float
    ct_high_hu: float
    pet_high_fraction: float = 0.8

    def __post_init__(self) -> None:
        if not self.channels or any(c not in ("ct", "pet") for c in self.channels):
            raise ModelError(f"channels must be ct and/or pet, got {self.channels}")
        if not self.ct_high_hu > self.ct_low_hu:
            raise ModelError(f"CT limits must increase, got {self.ct_low_hu}..{self.ct_high_hu} HU")

    def apply(self, ct: np.ndarray, pet: np.ndarray, pet_max: float) -> np.ndarray:
        """Channels ``(C, …)`` float32 in [0, 1]; ``pet_max`` is the patient's SUL maximum in tissue."""
        out = []
        for channel in self.channels:
            if channel == "ct":
                x = (np.asarray(ct, np.float32) - self.ct_low_hu) / (self.ct_high_hu - self.ct_low_hu)
            else:
                top = self.pet_high_fraction * pet_max
                x = np.asarray(pet, np.float32) / top if top > 0 else np.zeros(np.shape(pet), np.float32)
            out.append(np.clip(x, 0.0, 1.0))
        return np.stack(out).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Normalisation:
        return cls(
            tuple(doc["channels"]),
            float(doc["ct_low_hu"]),
            float(doc["ct_high_hu"]),
            float(doc.get("pet_high_fraction", 0.8)),
        )


def fit_normalisation(
    inputs: str,
    ct_images: Sequence[np.ndarray],
    tissue_masks: Sequence[np.ndarray],
    ct_percentiles: tuple[float, float] = (5.0, 95.0),
) -> Normalisation:
    """CT limits from the pooled foreground HU of the training images (``ct_percentiles``: the study's 5th and 95th;
    nnU-Net uses 0.5 and 99.5)."""
    if inputs not in CHANNEL_SETS:
        raise InputError(f"inputs must be one of {sorted(CHANNEL_SETS)}, got {inputs!r}")
    values = np.concatenate([np.asarray(c)[np.asarray(t, bool)] for c, t in zip(ct_images, tissue_masks, strict=True)])
    if values.size == 0:
        raise InputError("no foreground pixels in the training images to fit the CT limits on")
    if not 0.0 <= ct_percentiles[0] < ct_percentiles[1] <= 100.0:
        raise InputError(f"CT percentiles must rise within 0–100, got {ct_percentiles}")
    low, high = np.percentile(values, list(ct_percentiles))
    if high <= low:
        high = low + 1.0
    return Normalisation(CHANNEL_SETS[inputs], float(low), float(high))


def pet_maximum(pet_images: Sequence[np.ndarray], tissue_masks: Sequence[np.ndarray]) -> float:
    """The patient's SUL maximum over the tissue of all its images (0 when there is no uptake)."""
    peaks = [
        float(np.max(np.where(np.asarray(t, bool), p, 0.0))) for p, t in zip(pet_images, tissue_masks, strict=True)
    ]
    return max(peaks) if peaks else 0.0
