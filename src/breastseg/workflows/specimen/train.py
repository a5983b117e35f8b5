"""Training the specimen Residual U-Net on 2D lamellae: one network per patient-grouped fold, as a bundle.

Each member trains on the patients outside its fold and early-stops on the fold's patients (validation). The
normalisation (CT limits from the pooled foreground HU of the training pool; PET relative to each patient's
SUL maximum) is fitted once and stored in the bundle. ``init_from`` fine-tunes an existing bundle's members
(the study's transfer from NST to ILC + DCIS), keeping its architecture and normalisation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from breastseg._version import __version__
from breastseg.errors import InputError
from breastseg.learn.splits import stratified_group_folds
from breastseg.learn.trainer import TrainConfig, TrainImage, train
from breastseg.nets.resunet import ResUNetConfig
from breastseg.workflows.specimen.bundle import BundleMember, ModelBundle
from breastseg.workflows.specimen.lamellae import LamellaSlice
from breastseg.workflows.specimen.normalisation import CHANNEL_SETS, Normalisation, fit_normalisation, pet_maximum


@dataclass(frozen=True)
class ResUNetTraining:
    """What to train: inputs (ct, pet or petct), architecture, optimisation, number of folds and seed, and the
    percentiles of the training foreground HU that bound the CT's scaling."""

    inputs: str = "petct"
    net: ResUNetConfig = field(default_factory=ResUNetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    folds: int = 5
    seed: int = 0
    ct_percentiles: tuple[float, float] = (5.0, 95.0)


def to_train_images(slices: Sequence[LamellaSlice], normalisation: Normalisation) -> list[TrainImage]:
    """Normalise every slice; PET relative to its patient's SUL maximum over all the patient's slices."""
    peaks: dict[str, float] = {}
    for pid in {s.patient_id for s in slices}:
        mine = [s for s in slices if s.patient_id == pid]
        peaks[pid] = pet_maximum([s.pet for s in mine], [s.tissue for s in mine])
    return [
        TrainImage(s.patient_id, normalisation.apply(s.ct, s.pet, peaks[s.patient_id]), s.label, s.tissue)
        for s in slices
    ]


def training_pixel_spacing(slices: Sequence[LamellaSlice], tolerance: float = 0.02) -> float:
    """The in-plane pixel size (mm) all ``slices`` share; the bundle's networks learnt features at this scale.

    Raises:
        InputError: the slices have non-square pixels or differ by more than ``tolerance`` (relative); resample
            them to one spacing first.
    """
    sizes = np.array([s.spacing[-2:] for s in slices], dtype=float)
    low, high = float(sizes.min()), float(sizes.max())
    if high > low * (1 + tolerance):
        raise InputError(
            f"the training slices have pixel sizes from {low:.4g} to {high:.4g} mm; a network learns at one scale, "
            "so resample the lamellae to one spacing first"
        )
    return round(float(np.median(sizes)), 6)


def train_member(shared: tuple[ResUNetConfig, Sequence[TrainImage]], job: dict[str, Any]) -> BundleMember:
    """One member: trains on the patients outside ``job["validation"]`` and early-stops on them (a function of
    its arguments only, so that it can run in another process or on a Dask worker)."""
    net_cfg, images = shared
    validation = set(job["validation"])
    result = train(
        net_cfg,
        [img for img in images if img.patient_id not in validation],
        [img for img in images if img.patient_id in validation],
        job["train"],
        checkpoint=job["checkpoint"],
        init_state=job["init"],
        show_progress=job["show_progress"],
        description=f"member {job['k'] + 1}/{job['n']}",
    )
    return BundleMember(
        result.state_dict, job["train_patients"], job["validation"], f"fold{job['k']}", result.best_validation_dice
    )


def train_bundle(
    slices: Sequence[LamellaSlice],
    spec: ResUNetTraining | None = None,
    init_from: ModelBundle | None = None,
    checkpoint_dir: str | Path | None = None,
    description: str = "",
    show_progress: bool = True,
    scheduler: str | None = None,
) -> ModelBundle:
    """Train ``spec.folds`` members (patient-grouped, stratified by tumour type) and bundle them; with a Dask
    ``scheduler`` (``tcp://host:8786``) the members train as tasks on the cluster's workers, one per fold."""
    spec = spec or ResUNetTraining()
    if spec.inputs not in CHANNEL_SETS:
        raise InputError(f"inputs must be one of {sorted(CHANNEL_SETS)}, got {spec.inputs!r}")
    types = {s.patient_id: s.tumour_type for s in slices}
    if len(types) < spec.folds:
        raise InputError(f"{len(types)} patients are too few for {spec.folds} folds")
    spacing = training_pixel_spacing(slices)
    if init_from is not None:
        net_cfg, norm = init_from.net, init_from.normalisation
        base = init_from.pixel_spacing_mm
        if base is not None and abs(spacing - base) > 0.02 * base:
            raise InputError(
                f"the base bundle learnt at {base:g} mm pixels but these slices have {spacing:g} mm; resample them"
            )
    else:
        net_cfg = dataclasses.replace(spec.net, in_channels=len(CHANNEL_SETS[spec.inputs]))
        norm = fit_normalisation(
            spec.inputs, [s.ct for s in slices], [s.tissue for s in slices], ct_percentiles=spec.ct_percentiles
        )
    images = to_train_images(slices, norm)
    folds = stratified_group_folds(types, spec.folds, spec.seed)
    jobs = [
        {
            "k": k,
            "n": len(folds),
            "validation": tuple(validation),
            "train_patients": tuple(sorted(types.keys() - set(validation))),
            "train": dataclasses.replace(spec.train, seed=spec.train.seed + k),
            "init": init_from.members[k % len(init_from.members)].state_dict if init_from is not None else None,
            "checkpoint": Path(checkpoint_dir) / f"member{k}.pt" if checkpoint_dir else None,
            "show_progress": show_progress and scheduler is None,
        }
        for k, validation in enumerate(folds)
    ]
    if scheduler is None:
        members = [train_member((net_cfg, images), job) for job in jobs]
    else:
        from breastseg.workflows.specimen.cluster import map_on_dask

        members = map_on_dask(scheduler, train_member, (net_cfg, images), jobs, f"breastseg-member-{spec.seed}")
    card = {
        "model": "Residual U-Net (MONAI UNet, residual units), Maris et al. 2025",
        "inputs": spec.inputs,
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
        "breastseg_version": __version__,
        "data": description or "not described",
        "patients": sorted(types),
        "tumour_types": sorted(set(types.values())),
        "n_slices": len(slices),
        "members": len(members),
        "validation_dice": [m.best_validation_dice for m in members],
        "fine_tuned_from": init_from.card.get("data") if init_from is not None else None,
        "training": dataclasses.asdict(spec),
        "intended_use": "research",
    }
    return ModelBundle(net_cfg, norm, members, card, spacing)
