"""The intensity-threshold baseline of the specimen study, fitted exactly as the study fits it.

* **CT**: one absolute HU threshold, swept from −2000 to +2000 HU in steps of 2.
* **PET**: one relative threshold, 0–100 % of the patient's SUVmax (within tissue).
* **PET-CT**: the CT's high-density tissue (Otsu within the tissue) gates the PET, then a relative threshold
  of the gated PET's maximum.

The threshold kept is the one with the highest mean Dice over the training patients (each patient's slices
pooled, unknown pixels excluded). Dice for every candidate comes from cumulative histograms, so the whole
sweep costs one pass over the pixels. Probability maps for PR-AUC are the per-patient min-max scaled inputs.
In 3D, the masks of the fold thresholds are averaged and thresholded at 0.5 (:func:`ensemble_probability`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from breastseg._version import __version__
from breastseg.errors import InputError, ModelError
from breastseg.io.atomic import atomic_path, write_json
from breastseg.workflows.specimen.margin import IntervalMasks
from breastseg.workflows.specimen.preprocess import otsu_threshold
from breastseg.workflows.specimen.uptake_edge import contrast_midpoint

ThresholdInput = Literal["ct", "pet", "petct"]

CT_SWEEP_HU = np.arange(-2000.0, 2000.0 + 1e-9, 2.0)
RELATIVE_SWEEP = np.round(np.arange(0.0, 1.0 + 1e-9, 0.005), 6)
MODEL_KIND = "breastseg.specimen.threshold"
MODEL_SCHEMA_VERSION = 1


@dataclass(frozen=True, eq=False)
class ThresholdCase:
    """One training patient: its 2D slices (CT in HU, PET in SUL on the CT grid, label map, tissue mask).

    Label maps use the study's classes: 0 benign, 1 malignant, ``unknown_label`` unknown (excluded).
    """

    patient_id: str
    ct: Sequence[np.ndarray]
    pet: Sequence[np.ndarray]
    label: Sequence[np.ndarray]
    tissue: Sequence[np.ndarray]
    unknown_label: int = 2


def _feature(
    kind: ThresholdInput, ct: np.ndarray, pet: np.ndarray, tissue: np.ndarray, gate_hu: float | None
) -> np.ndarray:
    """The quantity thresholded: HU (CT), SUL relative to its maximum (PET), gated relative SUL (PET-CT)."""
    if kind == "ct":
        return np.where(tissue, ct, -np.inf)
    values = np.where(tissue, pet, 0.0)
    if kind == "petct":
        assert gate_hu is not None
        values = np.where(ct > gate_hu, values, 0.0)
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def relative_uptake(kind: Literal["pet", "petct"], ct: np.ndarray, pet: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """The specimen's SUL relative to its maximum within ``tissue`` (PET), or within its high-density tissue
    (PET-CT: the CT gate of :func:`high_density_gate_hu` zeroes the rest); 3D or 2D, float32."""
    gate = high_density_gate_hu(ct[tissue]) if kind == "petct" else None
    return _feature(kind, ct.astype(np.float32), pet.astype(np.float32), tissue, gate)


def high_density_gate_hu(ct_values_in_tissue: np.ndarray) -> float:
    """Otsu threshold of the tissue's HU: above it is the high-density (fibroglandular/tumour) tissue."""
    return otsu_threshold(ct_values_in_tissue)


def case_feature_maps(kind: ThresholdInput, case: ThresholdCase) -> list[np.ndarray]:
    """Per-slice maps of the thresholded quantity, normalised over the patient's slices together.

    CT: HU inside the tissue (−inf outside). PET / PET-CT: SUL (gated by the patient's Otsu HU for PET-CT)
    relative to its maximum over all the patient's slices.
    """
    if kind == "ct":
        return [
            _feature("ct", np.asarray(c, float), np.asarray(p), np.asarray(t, bool), None)
            for c, p, t in zip(case.ct, case.pet, case.tissue, strict=True)
        ]
    gate = None
    if kind == "petct":
        tissue_hu = np.concatenate(
            [np.asarray(c)[np.asarray(t, bool)] for c, t in zip(case.ct, case.tissue, strict=True)]
        )
        gate = high_density_gate_hu(tissue_hu)
    raw = [
        np.where(np.asarray(t, bool), np.asarray(p, float), 0.0) * (np.asarray(c) > gate if gate is not None else 1.0)
        for c, p, t in zip(case.ct, case.pet, case.tissue, strict=True)
    ]
    peak = max(float(r.max()) for r in raw)
    return [r / peak if peak > 0 else r for r in raw]


def case_predictions(
    kind: ThresholdInput, case: ThresholdCase, threshold: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(binary mask, probability map) per slice of a test patient, with one fitted threshold.

    The probability map is the study's for PR-AUC: the patient's min-max scaled input (CT: HU over the pooled
    tissue; PET / PET-CT: the relative SUL, already in [0, 1]).
    """
    maps = case_feature_maps(kind, case)
    tissues = [np.asarray(t, bool) for t in case.tissue]
    if kind == "ct":
        inside = np.concatenate([m[t] for m, t in zip(maps, tissues, strict=True)])
        lo, hi = (float(inside.min()), float(inside.max())) if inside.size else (0.0, 1.0)
        probs = [np.where(t, (m - lo) / (hi - lo) if hi > lo else 0.0, 0.0) for m, t in zip(maps, tissues, strict=True)]
    else:
        probs = maps
    return [((m >= threshold) & t, p) for m, p, t in zip(maps, probs, tissues, strict=True)]


def _patient_features(kind: ThresholdInput, case: ThresholdCase) -> tuple[np.ndarray, np.ndarray]:
    """Pooled feature values of the patient's known pixels and whether each is malignant."""
    values, truth = [], []
    for f, lab in zip(case_feature_maps(kind, case), case.label, strict=True):
        lab = np.asarray(lab)
        known = lab != case.unknown_label
        values.append(f[known])
        truth.append(lab[known] == 1)
    return np.concatenate(values), np.concatenate(truth)


def dice_curve(values: np.ndarray, malignant: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Dice of ``values ≥ t`` against ``malignant`` for every ``t`` in ascending ``thresholds``, in one pass."""
    order = np.searchsorted(thresholds, values, side="right")  # number of thresholds ≤ value
    n = thresholds.size
    pos_hist = np.bincount(order[malignant], minlength=n + 1)
    all_hist = np.bincount(order, minlength=n + 1)
    # predicted positive at threshold k: values with at least k+1 thresholds ≤ them, i.e. order ≥ k+1
    tp = np.cumsum(pos_hist[::-1])[::-1][1:]
    pred = np.cumsum(all_hist[::-1])[::-1][1:]
    ref = int(malignant.sum())
    den = pred + ref
    return np.where(den > 0, 2.0 * tp / np.maximum(den, 1), 1.0)


@dataclass(frozen=True)
class FittedThreshold:
    """One fold's threshold, in HU (CT) or as a fraction of the (gated) SUL maximum (PET, PET-CT)."""

    value: float
    mean_training_dice: float
    training_patients: tuple[str, ...]


def fit_threshold(kind: ThresholdInput, cases: Sequence[ThresholdCase]) -> FittedThreshold:
    """The threshold with the best mean Dice over ``cases`` (ties: the lowest), as the study fits it."""
    if not cases:
        raise InputError("no training cases to fit a threshold on")
    sweep = CT_SWEEP_HU if kind == "ct" else RELATIVE_SWEEP
    curves = []
    for case in cases:
        values, truth = _patient_features(kind, case)
        curves.append(dice_curve(values, truth, sweep))
    mean = np.mean(curves, axis=0)
    k = int(np.argmax(mean))
    return FittedThreshold(float(sweep[k]), float(mean[k]), tuple(c.patient_id for c in cases))


@dataclass
class ThresholdModel:
    """A fitted threshold model: one threshold per cross-validation fold, applied as an ensemble in 3D.

    Saved as JSON with its model card (what it was fitted on, how well, and what it is not for).
    """

    input: ThresholdInput
    folds: list[FittedThreshold]
    tumour_types: tuple[str, ...] = ("NST",)
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def units(self) -> str:
        return "HU" if self.input == "ct" else "fraction of the specimen's (gated) SUL maximum"

    def independent_folds(self, exclude_patient: str | None = None) -> list[FittedThreshold]:
        """The fold thresholds not fitted on ``exclude_patient`` (the study's leakage guard).

        Raises:
            ModelError: every fold was fitted on that patient.
        """
        chosen = [f for f in self.folds if exclude_patient is None or exclude_patient not in f.training_patients]
        if not chosen:
            raise ModelError(f"every threshold of the model was fitted on patient {exclude_patient!r}")
        return chosen

    def feature(self, ct: np.ndarray, pet: np.ndarray, tissue: np.ndarray) -> np.ndarray:
        """The thresholded quantity on a (3D or 2D) specimen: HU (CT) or the (gated) SUL over its maximum."""
        if self.input == "ct":
            return _feature("ct", ct.astype(np.float32), pet.astype(np.float32), tissue, None)
        return relative_uptake(self.input, ct, pet, tissue)

    def masks(
        self, ct: np.ndarray, pet: np.ndarray, tissue: np.ndarray, exclude_patient: str | None = None
    ) -> list[np.ndarray]:
        """One binary mask per fold threshold on a (3D or 2D) specimen, leaving out folds fitted on the patient."""
        return self.masks_of(self.feature(ct, pet, tissue), tissue, exclude_patient)

    def masks_of(self, feature: np.ndarray, tissue: np.ndarray, exclude_patient: str | None = None) -> list[np.ndarray]:
        """:meth:`masks` of a :meth:`feature` map already computed."""
        return [(feature >= f.value) & tissue for f in self.independent_folds(exclude_patient)]

    def interval_masks(
        self, feature: np.ndarray, tissue: np.ndarray, exclude_patient: str | None = None
    ) -> IntervalMasks | None:
        """The two tumour contours that bound a PET threshold's margin (``feature``: :meth:`feature`'s), and
        their description; ``None`` for the CT threshold (an absolute HU: no relative contour to compare).

        The wide mask is the lowest fold threshold's; the narrow one the PET's contrast midpoint
        (:func:`~breastseg.workflows.specimen.uptake_edge.contrast_midpoint`, or the highest fold threshold if that
        is higher). A threshold fitted for Dice lies well below that level (a heterogeneous tumour loses its cooler
        parts above it), so where the tumour meets dense tissue of moderate uptake, the PET's blur carries the
        fitted contour outward past the tumour's boundary, and the minimum margin picks the worst such point; the
        midpoint contour lies at or inside the boundary and bounds the margin from the other side (the fold
        thresholds alone agree to within a few hundredths and give an interval of no width, as if the margin were
        known to the voxel).
        """
        if self.input == "ct":
            return None
        values = [f.value for f in self.independent_folds(exclude_patient)]
        low = min(values)
        wide = (feature >= low) & tissue
        midpoint = contrast_midpoint(feature, tissue, wide, gated=self.input == "petct", floor=max(values))
        basis = f"tumour drawn at {low:g} (lowest fold threshold) / {midpoint.describe()}"
        return IntervalMasks(wide, (midpoint.mask,), basis)

    def probability(self, ct: np.ndarray, pet: np.ndarray, tissue: np.ndarray) -> np.ndarray:
        """Per-patient min-max scaled input, the study's probability map for PR-AUC."""
        gate = high_density_gate_hu(ct[tissue]) if self.input == "petct" else None
        if self.input == "ct":
            inside = ct[tissue]
            lo, hi = float(inside.min()), float(inside.max())
            return np.where(tissue, (ct - lo) / (hi - lo) if hi > lo else 0.0, 0.0).astype(np.float32)
        return _feature(self.input, ct, pet, tissue, gate).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": MODEL_KIND,
            "schema_version": MODEL_SCHEMA_VERSION,
            "input": self.input,
            "units": self.units,
            "tumour_types": list(self.tumour_types),
            "folds": [asdict(f) for f in self.folds],
            "card": self.card,
        }

    def save(self, path: str | Path) -> Path:
        """Write the model JSON and a Markdown model card beside it (``<name>.card.md``), atomically."""
        path = Path(path)
        write_json(self.to_json(), path)
        with atomic_path(path.with_suffix(".card.md")) as tmp:
            tmp.write_text(render_card(self), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ThresholdModel:
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: no such model file") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: not a readable threshold model ({exc})") from exc
        if doc.get("kind") != MODEL_KIND:
            raise ModelError(f"{path}: not a specimen threshold model (kind {doc.get('kind')!r})")
        try:
            folds = [
                FittedThreshold(float(f["value"]), float(f["mean_training_dice"]), tuple(f["training_patients"]))
                for f in doc["folds"]
            ]
            return cls(doc["input"], folds, tuple(doc.get("tumour_types", ("NST",))), doc.get("card", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: threshold model is missing or has a malformed field ({exc})") from exc


def ensemble_probability(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of the fold masks: the fraction of fold thresholds calling each voxel tumour (threshold at 0.5)."""
    if not masks:
        raise ModelError("the threshold model has no folds")
    votes = np.zeros(masks[0].shape, dtype=np.uint8)
    for m in masks:
        votes += m
    return votes.astype(np.float32) / len(masks)


def fit_threshold_model(
    kind: ThresholdInput,
    cases: Sequence[ThresholdCase],
    n_folds: int = 5,
    seed: int = 0,
    tumour_types: Sequence[str] = ("NST",),
    data_description: str = "",
) -> ThresholdModel:
    """Fit one threshold per fold of a patient-grouped K-fold split (each fold leaves 1/K of patients out).

    With one fold, or data of one patient, the single threshold is fitted on every patient; with fewer patients
    than folds, one fold per patient. The card's ``folds_note`` says which happened and why (the command prints
    it).
    """
    ids = sorted({c.patient_id for c in cases})
    if len(ids) < 2 or n_folds < 2:
        folds = [fit_threshold(kind, cases)]
        note = (
            f"1 fold as asked, fitted on all {len(ids)} patients"
            if n_folds < 2
            else f"1 fold instead of {n_folds}: the lamellae come from a single patient, and a fold leaves whole "
            "patients out"
        )
    else:
        k = min(n_folds, len(ids))
        note = (
            f"{k} folds as asked, each leaving about {len(ids) / k:.1f} of {len(ids)} patients out"
            if k == n_folds
            else f"{k} folds instead of {n_folds}: only {len(ids)} patients, and a fold leaves whole patients out"
        )
        order = np.random.default_rng(seed).permutation(len(ids))
        groups = [set(np.asarray(ids)[order[i::k]]) for i in range(k)]
        folds = [fit_threshold(kind, [c for c in cases if c.patient_id not in g]) for g in groups]
    card = {
        "model": f"intensity threshold ({kind}), Maris et al. 2025 baseline",
        "fitted": datetime.now(UTC).isoformat(timespec="seconds"),
        "breastseg_version": __version__,
        "training_patients": ids,
        "n_slices": int(sum(len(c.label) for c in cases)),
        "folds": len(folds),
        "folds_note": note,
        "seed": seed,
        "data": data_description or "not described",
        "intended_use": "research; baseline for the specimen margin workflow",
        "limitations": "a single global threshold; fit it on your own scanner's data before use",
    }
    return ThresholdModel(kind, folds, tuple(tumour_types), card)


def render_card(model: ThresholdModel) -> str:
    """Markdown model card."""
    card = model.card
    lines = [
        f"# Model card: {card.get('model', 'specimen threshold model')}",
        "",
        f"* **Input**: {model.input}; threshold units: {model.units}",
        f"* **Tumour types**: {', '.join(model.tumour_types)}",
        f"* **Fitted**: {card.get('fitted', '?')} with breastseg {card.get('breastseg_version', '?')}",
        f"* **Training data**: {card.get('data', '?')} — {len(card.get('training_patients', []))} patients, "
        f"{card.get('n_slices', '?')} slices",
        f"* **Intended use**: {card.get('intended_use', '?')}",
        f"* **Limitations**: {card.get('limitations', '?')}",
        "",
        "| fold | threshold | mean training Dice | training patients |",
        "|---|---|---|---|",
    ]
    for i, f in enumerate(model.folds):
        lines.append(f"| {i} | {f.value:g} | {f.mean_training_dice:.3f} | {len(f.training_patients)} |")
    return "\n".join(lines) + "\n"
