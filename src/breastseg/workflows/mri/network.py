"""The breast-MRI tumour network: training on prepared exams and segmentation of new ones (Hirsch et al. 2022).

**Recipe** (:class:`MriRecipe`): the study's valid-padding 3D U-Net (:mod:`breastseg.nets.valid_unet`) on the four
channels of :mod:`breastseg.workflows.mri.inputs`, or MONAI's standard 3D U-Net as the comparison
(``network="monai_unet"``); patches with tumour : non-tumour = 1 : 4 (``tumour_fraction`` 0.2), half of the non-
tumour patches centred on strongly enhancing breast tissue (T1c above the breast's ``enhancing_percentile``, outside
the tumour: benign foci, vessels, background parenchymal enhancement — the study's enrichment of negatives at high
T1c); in-plane rotation augmentation; the generalised Dice loss — plus cross-entropy by default: alone it drove the
tumour probability to zero on patches within three epochs (:class:`breastseg.learn.losses.GeneralisedDiceCELoss`) —
and Adam. The project's one trainer (:func:`breastseg.learn.trainer.train`) runs it: a fixed number of epochs with
nnU-Net's poly decay, the last epoch kept, the held-out cases watched (valid networks are validated by edge-to-edge
output tiles).

**Segmentation** (:func:`segment_exam`): the prepared exam's channels → tumour probability (valid network: output
tiles of a window larger than the training patch; MONAI's: Gaussian sliding windows) → the study's
post-processing inside the breast mask (threshold at ``fraction`` of the maximum, keep the connected region(s)
holding it) → the mask on the first T1c's original grid and the read-outs of
:mod:`breastseg.workflows.mri.readouts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import torch

from breastseg._version import __version__
from breastseg.errors import InputError, ModelError
from breastseg.image import Image
from breastseg.learn.model_file import card_bullets, read_model_file, write_model_file
from breastseg.learn.patches import PatchConfig
from breastseg.learn.trainer import Loss, TrainConfig, TrainImage, train
from breastseg.learn.volume_patches import VolumeAugmentation
from breastseg.nets import (
    MonaiUNetConfig,
    NetConfig,
    ValidUNetConfig,
    load_network,
    net_config_from_dict,
    net_config_to_dict,
)
from breastseg.predict.device import Precision, resolve_device
from breastseg.predict.valid_tiles import predict_whole_volume
from breastseg.workflows.mri.inputs import BREAST_CHANNEL, CHANNELS, MriPreprocessing, PreparedExam
from breastseg.workflows.mri.postprocess import postprocess
from breastseg.workflows.mri.readouts import TumourReadout, tumour_readout

MODEL_KIND = "breastseg.mri.tumour"
MODEL_SCHEMA_VERSION = 1


class Network(StrEnum):
    """The tumour network (``--network``): the study's valid-padding 3D U-Net, or MONAI's 3D U-Net."""

    VALID_UNET = "valid_unet"
    MONAI_UNET = "monai_unet"


DEFAULT_PATCH: dict[str, tuple[int, int, int]] = {"valid_unet": (19, 75, 75), "monai_unet": (16, 80, 80)}


@dataclass(frozen=True)
class MriRecipe:
    """Training recipe (defaults: the study's network at its ≈ 3 M parameters; tests use a tiny one)."""

    network: Network = Network.VALID_UNET
    patch_size: tuple[int, int, int] | None = None  # None: DEFAULT_PATCH of the network
    first_channels: int = 52
    epochs: int = 60
    patches_per_scan: int = 20
    batch_size: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    tumour_fraction: float = 0.2  # tumour : non-tumour = 1 : 4
    enhancing_fraction: float = 0.5  # of the non-tumour patches, centred on strongly enhancing tissue
    enhancing_percentile: float = 95.0  # "strongly enhancing": T1c above this percentile of the breast
    loss: Loss = Loss.GENERALISED_DICE_CE
    rotation_probability: float = 0.5
    max_rotation_deg: float = 20.0
    precision: Precision = Precision.FLOAT32
    seed: int = 0

    def patch(self) -> tuple[int, int, int]:
        return tuple(self.patch_size or DEFAULT_PATCH[self.network])  # type: ignore[return-value]

    def net_config(self) -> NetConfig:
        if self.network == "valid_unet":
            config = ValidUNetConfig(in_channels=len(CHANNELS), first_channels=self.first_channels)
            config.output_shape(self.patch())  # raises a clear error for a size the network cannot take
            return config
        f = self.first_channels
        config_m = MonaiUNetConfig(in_channels=len(CHANNELS), channels=(f, 2 * f, 4 * f, 8 * f, 16 * f))
        bad = [(p, m) for p, m in zip(self.patch(), config_m.axis_multiples(), strict=True) if p % m]
        if bad:
            raise InputError(f"MONAI UNet: patch {self.patch()} must be multiples of {config_m.axis_multiples()}")
        return config_m

    def train_config(self) -> TrainConfig:
        augmentation = VolumeAugmentation(
            rotation_probability=self.rotation_probability,
            max_rotation_deg=self.max_rotation_deg,
            scale_probability=0.0,
            elastic_probability=0.0,
            mirror_probability=0.0,
            gamma_probability=0.0,
            in_plane_rotation=True,
        )
        patch = PatchConfig(
            size=self.patch(),
            per_image=self.patches_per_scan,
            positive_bias=self.tumour_fraction,
            volume=augmentation,
            mask_channels=(BREAST_CHANNEL,),
            focus_bias=self.enhancing_fraction,
        )
        return TrainConfig.fixed_schedule(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            patch=patch,
            seed=self.seed,
            loss=self.loss,
            precision=self.precision,
        )


def enhancing_focus(prepared: PreparedExam, tumour: np.ndarray | None, percentile: float) -> np.ndarray:
    """Breast voxels whose T1c is above the breast's ``percentile``, outside the tumour: the hard negatives."""
    t1c = prepared.features.t1c
    if not prepared.breast.any():
        raise InputError(f"{prepared.source}: the breast mask is empty")
    cut = float(np.percentile(t1c[prepared.breast], percentile))
    focus = prepared.breast & (t1c > cut)
    return focus & ~tumour if tumour is not None else focus


def training_image(case_id: str, prepared: PreparedExam, tumour: np.ndarray, recipe: MriRecipe) -> TrainImage:
    """A prepared exam and its reference tumour mask as the trainer takes them (tissue = the breast)."""
    if tumour.shape != prepared.channels.shape[1:]:
        raise InputError(f"{case_id}: tumour mask shape {tumour.shape} ≠ channels {prepared.channels.shape[1:]}")
    focus = enhancing_focus(prepared, tumour, recipe.enhancing_percentile)
    return TrainImage(case_id, prepared.channels, tumour.astype(np.int64), prepared.breast | tumour, focus)


@dataclass(eq=False)
class MriModel:
    """A trained MRI tumour network: architecture, preprocessing, training patch, weights and card."""

    net: NetConfig
    preprocessing: MriPreprocessing
    recipe: MriRecipe
    state_dict: dict[str, torch.Tensor]
    card: dict[str, Any] = field(default_factory=dict)

    def network(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        return load_network(self.net, self.state_dict, device)

    def save(self, path: str | Path) -> Path:
        header = {
            "kind": MODEL_KIND,
            "schema_version": MODEL_SCHEMA_VERSION,
            "net": net_config_to_dict(self.net),
            "preprocessing": self.preprocessing.to_json(),
            "recipe": asdict(self.recipe),
            "channels": list(CHANNELS),
            "card": self.card,
            "breastseg_version": __version__,
        }
        return write_model_file(path, header, self.state_dict, card_markdown(header))

    @classmethod
    def load(cls, path: str | Path) -> MriModel:
        header, weights = read_model_file(path, MODEL_KIND, "MRI tumour model")
        if header.get("schema_version") != MODEL_SCHEMA_VERSION:
            raise ModelError(f"{path}: model schema {header.get('schema_version')!r}; this breastseg reads 1")
        if header.get("channels") != list(CHANNELS):
            raise ModelError(f"{path}: input channels {header.get('channels')} ≠ this breastseg's {list(CHANNELS)}")
        recipe = dict(header["recipe"])
        if recipe.get("patch_size") is not None:
            recipe["patch_size"] = tuple(recipe["patch_size"])
        return cls(
            net_config_from_dict(header["net"]),
            MriPreprocessing.from_json(header["preprocessing"]),
            MriRecipe(**recipe),
            weights,
            header["card"],
        )


def card_markdown(header: dict[str, Any]) -> str:
    recipe, card = header["recipe"], header["card"]
    lines = [
        "# Model card: breastseg breast DCE-MRI tumour network",
        "",
        f"* **Inputs**: {', '.join(header['channels'])} on the first post-contrast T1c's grid (in-plane ×2 "
        f"upsampling above {header['preprocessing']['upsample_above_mm']} mm; {header['preprocessing']['registration']}"
        " registration of every phase onto the first T1c; intensities ÷ the breast's pre-contrast T1 95th percentile)",
        f"* **Network**: `{json.dumps(header['net'])}`; training patch {recipe['patch_size'] or 'default'}",
        f"* **Recipe**: `{json.dumps(recipe)}`",
    ]
    lines += card_bullets(card)
    lines += ["", f"Written by breastseg {header['breastseg_version']}."]
    return "\n".join(lines) + "\n"


def train_mri(
    train_cases: Sequence[tuple[str, PreparedExam, np.ndarray]],
    validation_cases: Sequence[tuple[str, PreparedExam, np.ndarray]],
    recipe: MriRecipe,
    preprocessing: MriPreprocessing,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    show_progress: bool = True,
) -> MriModel:
    """Train the network on ``(case_id, prepared exam, reference mask on its grid)`` cases (see the module
    docstring); the validation cases are watched only (the last epoch is the model)."""
    if not train_cases:
        raise InputError("MRI training needs at least one case")
    images = [training_image(c, p, m, recipe) for c, p, m in train_cases]
    validation = [training_image(c, p, m, recipe) for c, p, m in validation_cases]
    net = recipe.net_config()
    run_on = resolve_device(device)
    result = train(
        net,
        images,
        validation,
        recipe.train_config(),
        checkpoint=checkpoint,
        show_progress=show_progress,
        description="MRI network",
        device=run_on,
    )
    card = {
        "trained": datetime.now(UTC).strftime("%Y-%m-%d"),
        "training_cases": ", ".join(c for c, _, _ in train_cases),
        "validation_cases": ", ".join(c for c, _, _ in validation_cases) or "none",
        "validation_dice": "—" if not validation else f"{result.best_validation_dice:.3f} (watched, last epoch)",
        "seconds": f"{result.seconds:.0f}",
        "device": str(run_on),
        "intended_use": "research; not a medical device",
    }
    return MriModel(net, preprocessing, recipe, result.state_dict, card)


def tumour_probability(
    model: MriModel, prepared: PreparedExam, device: str = "auto", precision: Precision = Precision.FLOAT32
) -> np.ndarray:
    """The network's tumour probability ``(z, y, x)`` on the prepared exam's grid."""
    net = model.network(resolve_device(device))
    patch = model.recipe.patch()
    return predict_whole_volume([net], prepared.channels, model.net, patch, precision)


@dataclass(eq=False)
class MriSegmentation:
    """The network's result on one exam: probability and mask on the harmonised grid, the mask on the first
    T1c's original grid, and the read-outs."""

    probability: Image
    mask: Image
    mask_original: Image
    readout: TumourReadout


def segment_exam(
    model: MriModel,
    prepared: PreparedExam,
    fraction: float = 0.6,
    per_slice: bool = False,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> MriSegmentation:
    """Segment the tumour of one prepared exam (see the module docstring)."""
    say = progress or (lambda _: None)
    say("predicting the tumour probability")
    prob = tumour_probability(model, prepared, device) * prepared.breast
    mask = postprocess(prob, fraction=fraction, per_slice=per_slice)
    grid = prepared.grid_image
    prob_img = grid.with_array(prob.astype(np.float32), units="probability")
    mask_img = grid.with_array(mask.astype(np.uint8), units="label")
    first = prepared.exam.post[0]
    original = mask_img if mask_img.shape == first.shape else mask_img.resample_onto(first, order=0)
    h = prepared.harmonised
    readout = tumour_readout(mask, grid.spacing, h.t1.array, [p.array for p in h.post])
    return MriSegmentation(
        prob_img, mask_img, original.with_array(original.array.astype(np.uint8), units="label"), readout
    )
