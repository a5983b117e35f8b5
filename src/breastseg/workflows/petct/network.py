"""breastseg's own PET/CT lesion networks: nnU-Net's 3D U-Net (MONAI DynUNet), trained by the project's one
trainer with patient-grouped K-fold cross-validation, kept as a K-member ensemble in one model file.

Recipe (Moreau et al. 2022 on nnU-Net; :class:`Recipe`): channels and preprocessing from
:mod:`breastseg.workflows.petct.inputs`; patches of ``patch_size`` voxels on the model grid, a third centred on
a lesion voxel (nnU-Net's foreground oversampling), the rest anywhere in the body — for the follow-up network half
of those on the registered baseline lesions, the hard negatives where a lesion has resolved; rotation, scaling, elastic,
mirror and gamma augmentation (:mod:`breastseg.learn.volume_patches`); Dice + cross-entropy loss, Adam at
3e-4 with nnU-Net's poly decay for a fixed number of epochs, the last epoch kept (the held-out fold is only
watched). Fold k's network never sees fold k's patients, so the K members together are the ensemble for new
patients, and any one scan of a training patient is predicted only by the members that did not train on that
patient (:func:`breastseg.learn.ensemble.independent_members`): the baseline network can be evaluated on the same
patients' follow-up scans without leakage.

Inference: the channels resampled to the model grid, Gaussian-weighted sliding windows (overlap 0.5) per member,
the members' mean probability resampled (linear) back onto the PET grid and thresholded at 0.5; then the model's
post-processing — findings whose uptake (SUVbw, unclipped) does not stand out from their surroundings are
dropped, at the contrast threshold chosen on the out-of-fold predictions after training
(:mod:`breastseg.workflows.petct.postprocess`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from breastseg._version import __version__
from breastseg.errors import InputError, ModelError
from breastseg.image import Image
from breastseg.learn.ensemble import Member, independent_members
from breastseg.learn.model_file import card_bullets, read_model_file, write_model_file
from breastseg.learn.patches import PatchConfig
from breastseg.learn.trainer import TrainConfig, TrainImage, train
from breastseg.learn.volume_patches import VolumeAugmentation
from breastseg.nets import DynUNetConfig, load_network, net_config_from_dict, net_config_to_dict, plan_dynunet
from breastseg.predict.device import Precision, resolve_device, resolve_precision
from breastseg.predict.sliding import predict_sliding
from breastseg.workflows.petct.inputs import (
    CT_NAMES,
    Kind,
    Preprocessing,
    ScanChannels,
    fit_preprocessing,
    read_channels,
)
from breastseg.workflows.petct.longitudinal import SCAN_INPUT_NAMES, PatientScans, patient_folds
from breastseg.workflows.petct.postprocess import (
    ComponentContrast,
    ContrastCase,
    ContrastChoice,
    choose_min_contrast,
    component_contrasts,
)

MODEL_KIND = "breastseg.petct.dynunet"
MODEL_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """Training recipe of a PET/CT network (defaults: nnU-Net's 3D full-resolution setting scaled to a single
    GPU; the tests and the quick start use a tiny one)."""

    patch_size: tuple[int, int, int] = (96, 96, 96)
    base_filters: int = 32
    max_filters: int = 320
    epochs: int = 100
    patches_per_scan: int = 8
    batch_size: int = 2
    learning_rate: float = 3e-4
    weight_decay: float = 3e-5
    foreground_fraction: float = 0.33
    baseline_focus_fraction: float = 0.5  # follow-up network: of the other patches, centred on baseline lesions
    precision: Precision = Precision.FLOAT32
    folds: int = 5
    seed: int = 0

    def train_config(self, mask_channels: tuple[int, ...]) -> TrainConfig:
        patch = PatchConfig(
            size=self.patch_size,
            per_image=self.patches_per_scan,
            positive_bias=self.foreground_fraction,
            volume=VolumeAugmentation(),
            mask_channels=mask_channels,
            focus_bias=self.baseline_focus_fraction if mask_channels else 0.0,
        )
        return TrainConfig.fixed_schedule(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            patch=patch,
            seed=self.seed,
            precision=self.precision,
        )


@dataclass(eq=False)
class PetctModel:
    """A trained PET/CT ensemble: architecture, preprocessing, window size, members and card, in one ``.pt``
    (plain tensors and JSON, loaded with ``weights_only=True``) with a ``.card.md`` beside it."""

    net: DynUNetConfig
    preprocessing: Preprocessing
    patch_size: tuple[int, int, int]
    members: list[Member]
    card: dict[str, Any] = field(default_factory=dict)
    postprocessing: dict[str, Any] | None = None  # ContrastChoice.to_json(); None: chosen by no cross-validation

    @property
    def min_contrast(self) -> float | None:
        """The contrast below which predicted findings are dropped (``None``: none dropped)."""
        value = (self.postprocessing or {}).get("min_contrast")
        return None if value is None else float(value)

    def independent(self, exclude_patient: str | None) -> list[Member]:
        """The members not trained on ``exclude_patient``; a member's validation patients are its held-out fold
        (watched only, poly schedule, last epoch kept), so they count as unseen."""
        return independent_members(self.members, exclude_patient, validation_counts=False)

    def networks(self, exclude_patient: str | None = None, device: str | torch.device = "cpu") -> list[torch.nn.Module]:
        """The members' networks, leaving out those that trained or validated on ``exclude_patient``."""
        return [load_network(self.net, m.state_dict, device) for m in self.independent(exclude_patient)]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        header = {
            "kind": MODEL_KIND,
            "schema_version": MODEL_SCHEMA_VERSION,
            "net": net_config_to_dict(self.net),
            "preprocessing": self.preprocessing.to_json(),
            "patch_size": list(self.patch_size),
            "members": [
                {
                    "fold": m.fold,
                    "training_patients": list(m.training_patients),
                    "validation_patients": list(m.validation_patients),
                    "validation_dice": m.best_validation_dice,
                }
                for m in self.members
            ],
            "card": self.card,
            "postprocessing": self.postprocessing,
            "breastseg_version": __version__,
        }
        return write_model_file(path, header, [m.state_dict for m in self.members], card_markdown(header))

    @classmethod
    def load(cls, path: str | Path) -> PetctModel:
        header, weights = read_model_file(path, MODEL_KIND, "PET/CT model")
        if header.get("schema_version") != MODEL_SCHEMA_VERSION:
            raise ModelError(f"{path}: model schema {header.get('schema_version')!r}; this breastseg reads 1")
        net = net_config_from_dict(header["net"])
        if not isinstance(net, DynUNetConfig):
            raise ModelError(f"{path}: network {header['net'].get('kind')!r} is not a DynUNet")
        members = [
            Member(
                w,
                tuple(m["training_patients"]),
                tuple(m["validation_patients"]),
                m["fold"],
                m.get("validation_dice"),
            )
            for w, m in zip(weights, header["members"], strict=True)
        ]
        patch = tuple(int(v) for v in header["patch_size"])
        pre = Preprocessing.from_json(header["preprocessing"])
        return cls(net, pre, patch, members, header["card"], header.get("postprocessing"))  # type: ignore[arg-type]


def card_markdown(header: dict[str, Any]) -> str:
    pre, card = header["preprocessing"], header["card"]
    lines = [
        f"# Model card: breastseg PET/CT {pre['kind']} lesion network",
        "",
        f"* **Inputs**: {', '.join(pre['channels'])} on the scan's PET grid, resampled to "
        f"{' × '.join(f'{v:.2f}' for v in pre['spacing_mm'])} mm (z, y, x)",
        f"* **Normalisation**: PET SUVbw clipped to [0, 5]; CT clipped to {pre['ct_clip_hu'][0]:.0f}…"
        f"{pre['ct_clip_hu'][1]:.0f} HU, z-scored (mean {pre['ct_mean_hu']:.1f}, SD {pre['ct_sd_hu']:.1f} HU)",
        f"* **Network**: MONAI DynUNet (nnU-Net topology) `{json.dumps(header['net'])}`; sliding window "
        f"{' × '.join(map(str, header['patch_size']))} voxels",
    ]
    lines += card_bullets(card)
    lines += ["", "| member | validation patients | validation Dice (watched, model grid) |", "|---|---|---|"]
    for m in header["members"]:
        score = "—" if m["validation_dice"] is None else f"{m['validation_dice']:.3f}"
        lines.append(f"| {m['fold']} | {', '.join(m['validation_patients'])} | {score} |")
    lines += postprocessing_markdown(header.get("postprocessing"))
    lines += ["", f"Written by breastseg {header['breastseg_version']}."]
    return "\n".join(lines) + "\n"


def postprocessing_markdown(post: dict[str, Any] | None) -> list[str]:
    """The card's post-processing section: the chosen contrast threshold and the cross-validation behind it."""
    if not post:
        return ["", "**Post-processing**: none (not chosen by cross-validation)."]
    chosen = post["min_contrast"]
    if post.get("refused"):
        return ["", f"**Post-processing**: none — not chosen: {post['refused']}."]
    rule = "none" if chosen is None else f"findings with uptake contrast below {chosen:g} dropped"
    lines = ["", f"**Post-processing** (chosen on the out-of-fold predictions): {rule}.", ""]
    lines += ["| min contrast | removed | lesion recall | lesion precision | lesion F1 | global Dice |"]
    lines += ["|---|---|---|---|---|---|"]

    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{v:.3f}"

    for row in post["cv"]:
        name = "none" if row["min_contrast"] is None else f"{row['min_contrast']:g}"
        lines.append(
            f"| {name} | {row['components_removed']} | {fmt(row['lesion_recall'])} | {fmt(row['lesion_precision'])} "
            f"| {fmt(row['lesion_f1'])} | {fmt(row['global_dice'])} |"
        )
    return lines


def training_image(scan_id: str, preprocessing: Preprocessing, scan: ScanChannels) -> TrainImage:
    """A scan on the model grid as the trainer takes it; for the follow-up network the registered baseline lesions
    are the focus (hard negatives where a lesion resolved)."""
    channels, label, body, _ = preprocessing.network_input(scan)
    if label is None:
        raise InputError(f"{scan.folder}: a training scan needs its lesion mask")
    masks = preprocessing.mask_channels
    focus = channels[masks[0]] > 0.5 if masks else None
    return TrainImage(scan_id, channels, label.astype(np.int64), body, focus)


def cross_validate(
    patients: Sequence[PatientScans],
    kind: Kind,
    recipe: Recipe = Recipe(),
    mask_name: str = "lesions.nii.gz",
    checkpoint_dir: str | Path | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
    pet_units: str | None = None,
) -> PetctModel:
    """Train ``recipe.folds`` networks, fold k holding out the k-th group of patients (folds balanced by
    ``PatientScans.site`` when given), and return them as one model (see the module docstring).

    The follow-up network's baseline-mask channel is the reference baseline mask ``mask_name`` (at prediction,
    whatever mask the user names: a reference or the baseline network's). ``pet_units``: as
    :func:`~breastseg.workflows.petct.inputs.read_channels`."""
    ids = [p.patient_id for p in patients]
    if len(set(ids)) != len(ids):
        raise InputError("patient ids must be unique in the patients table")
    say = progress or (lambda _: None)
    say(f"reading {len(patients)} {kind} scans")
    scans = [read_channels(p.scan(kind), kind, mask_name, p.baseline, mask_name, pet_units) for p in patients]
    preprocessing = fit_preprocessing(scans, kind)
    images = [training_image(p.patient_id, preprocessing, s) for p, s in zip(patients, scans, strict=True)]
    channels = len(preprocessing.channels)
    net = plan_dynunet(recipe.patch_size, preprocessing.spacing_mm, channels, recipe.base_filters, recipe.max_filters)
    folds = patient_folds(patients, recipe.folds, recipe.seed)
    config = recipe.train_config(preprocessing.mask_channels)
    run_on = resolve_device(device)
    members = []
    for k, held_out in enumerate(folds):
        train_images = [im for im in images if im.patient_id not in held_out]
        validation = [im for im in images if im.patient_id in held_out]
        ckpt = Path(checkpoint_dir) / f"{kind}_fold{k}.pt" if checkpoint_dir else None
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
        say(f"fold {k + 1} of {len(folds)}: {len(train_images)} training scans, {len(validation)} held out")
        result = train(
            net, train_images, validation, config, checkpoint=ckpt, device=run_on, description=f"fold {k + 1}"
        )
        trained_on = tuple(sorted(im.patient_id for im in train_images))
        members.append(Member(result.state_dict, trained_on, tuple(held_out), f"fold{k}", result.best_validation_dice))
    card = {
        "kind": kind,
        "trained": datetime.now(UTC).strftime("%Y-%m-%d"),
        "training_data": f"{len(patients)} patients ({kind} scans), {len(folds)}-fold patient-grouped CV",
        "recipe": json.dumps(asdict(recipe)),
        "device": str(run_on),
        "intended_use": "research; not a medical device",
    }
    model = PetctModel(net, preprocessing, recipe.patch_size, members, card)
    say("choosing the post-processing on the out-of-fold predictions")
    model.postprocessing = choose_postprocessing(model, patients, mask_name, device, scans).to_json()
    return model


def choose_postprocessing(
    model: PetctModel,
    patients: Sequence[PatientScans],
    mask_name: str = "lesions.nii.gz",
    device: str = "auto",
    scans: Sequence[ScanChannels] | None = None,
    pet_units: str | None = None,
) -> ContrastChoice:
    """Predict every patient's scan of the model's kind by the members that did not train on the patient,
    without post-processing, and choose the contrast threshold on those predictions against the reference masks
    ``mask_name`` (:func:`breastseg.workflows.petct.postprocess.choose_min_contrast`). ``scans``: the channels
    already read (as :func:`cross_validate` has them); else read with ``pet_units`` (as :func:`read_channels`)."""
    kind = model.preprocessing.kind
    if scans is None:
        scans = [read_channels(p.scan(kind), kind, mask_name, p.baseline, mask_name, pet_units) for p in patients]
    cases = []
    for p, scan in zip(patients, scans, strict=True):
        if scan.lesions is None:
            raise InputError(f"{scan.folder}: choosing the post-processing needs the scan's reference lesion mask")
        raw = predict_scan(model, scan, p.patient_id, device, min_contrast=None)
        spacing = raw.mask.spacing
        components = component_contrasts(scan.suv, raw.mask.array > 0, spacing, scan.body)
        cases.append(ContrastCase(p.patient_id, components, scan.lesions, spacing, scan.body))  # type: ignore[arg-type]
    return choose_min_contrast(cases)


@dataclass(eq=False)
class LesionPrediction:
    """The ensemble's mean lesion probability and the thresholded mask, both on the scan's PET grid."""

    probability: Image
    mask: Image
    members_used: tuple[str, ...]
    removed: tuple[ComponentContrast, ...] = ()  # findings the post-processing dropped


def predict_scan(
    model: PetctModel,
    scan: ScanChannels,
    exclude_patient: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    overlap: float = 0.5,
    mirror: bool = False,
    threshold: float = 0.5,
    min_contrast: float | Literal["model"] | None = "model",
) -> LesionPrediction:
    """Segment one scan (channels from :func:`read_channels` with the model's kind) with the members that did
    not see ``exclude_patient`` (see the module docstring). ``min_contrast``: drop findings whose uptake contrast
    over their surroundings is below it (``"model"``: the model's cross-validated choice; ``None``: keep all)."""
    run_on = resolve_device(device)
    members = model.independent(exclude_patient)
    nets = model.networks(exclude_patient, run_on)
    channels, _, _, grid = model.preprocessing.network_input(scan)
    prob = predict_sliding(
        nets, channels, model.patch_size, overlap, precision=resolve_precision(precision, run_on), mirror=mirror
    )
    pet = scan.images[0]
    on_model = Image(prob, grid.spacing, grid.origin, grid.direction, units="probability")
    probability = on_model if grid is scan.grid else on_model.resample_onto(pet, order=1, fill=0.0)
    mask = probability.array >= threshold
    limit = model.min_contrast if isinstance(min_contrast, str) else min_contrast
    removed: tuple[ComponentContrast, ...] = ()
    if limit is not None and mask.any():
        components = component_contrasts(scan.suv, mask, pet.spacing, scan.body)
        mask, removed = components.kept(limit), tuple(components.removed(limit))
    probability = probability.with_array(probability.array.astype(np.float32))
    labels = pet.with_array(mask.astype(np.uint8), units="label")
    return LesionPrediction(probability, labels, tuple(m.fold for m in members), removed)


def predict_patients(
    model: PetctModel,
    patients: Sequence[PatientScans],
    timepoint: Kind,
    out_name: str,
    baseline_mask_name: str = "lesions.nii.gz",
    device: str = "auto",
    mirror: bool = False,
    progress: Callable[[str], None] | None = None,
    min_contrast: float | Literal["model"] | None = "model",
    out_dir: str | Path | None = None,
    pet_units: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Segment every patient's ``timepoint`` scan, writing ``out_name`` into its folder (or, with ``out_dir``,
    to :meth:`PatientScans.mask_path` there, the inputs untouched; a follow-up model then reads the baseline mask
    from ``out_dir`` where an earlier run wrote it); each scan is predicted only by the members that did not train
    on its patient. Returns, per patient, the scan folder, the mask written, the members used and the findings
    the post-processing dropped (see :func:`predict_scan`). ``pet_units``: as :func:`read_channels`."""
    from breastseg.io import write_image

    kind = model.preprocessing.kind
    if kind == "followup" and timepoint != "followup":
        raise InputError("the follow-up network segments follow-up scans only (--timepoint followup)")
    protected = {*SCAN_INPUT_NAMES, *CT_NAMES, baseline_mask_name}
    if out_name in protected or Path(out_name).name != out_name:
        raise InputError(
            f"--out-name {out_name!r}: a prediction is written beside the scan's inputs and may not replace one of "
            f"them ({', '.join(sorted(protected))}) or point elsewhere; choose a new name such as lesions_pred.nii.gz"
        )
    done: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(patients):
        folder = p.scan(timepoint)
        if progress is not None:
            progress(f"segmenting {p.patient_id} {timepoint} ({i + 1} of {len(patients)})")
        base_mask = p.mask_path("baseline", baseline_mask_name, out_dir)
        if not base_mask.is_file():
            base_mask = p.baseline / baseline_mask_name
        scan = read_channels(folder, kind, None, p.baseline, str(base_mask), pet_units)
        result = predict_scan(model, scan, p.patient_id, device, mirror=mirror, min_contrast=min_contrast)
        target = p.mask_path(timepoint, out_name, out_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_image(result.mask, target)
        removed = [c.row() for c in result.removed]
        done[p.patient_id] = {
            "scan": str(folder),
            "mask": str(target),
            "members": list(result.members_used),
            "removed": removed,
        }
    return done
