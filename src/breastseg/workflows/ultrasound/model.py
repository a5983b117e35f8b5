"""Ultrasound networks: training images from cases, one fold's training, the model file, and prediction.

Recipe (stored in the model file, applied identically to training and prediction): grayscale 0–255 → [0, 1];
resized (anti-aliased bilinear) to ``input_size`` × ``input_size`` pixels, as BUSI studies do; the network's
tumour probability is resized (bilinear) back to the image's own size, where the mask and the metrics are made.
Training is the project's one trainer (:func:`breastseg.learn.trainer.train`) with the ultrasound augmentations
(:func:`breastseg.learn.patches.augment_ultrasound`) on whole images, and the same masked Dice loss.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.transform import resize

from breastseg._version import __version__
from breastseg.errors import ModelError
from breastseg.learn.model_file import card_bullets, read_model_file, write_model_file
from breastseg.learn.patches import PatchConfig
from breastseg.learn.trainer import TrainConfig, TrainImage, TrainResult, train
from breastseg.nets import NetConfig, load_network, net_config_from_dict, net_config_to_dict
from breastseg.predict.slices import predict_batch
from breastseg.workflows.ultrasound.dataset import UltrasoundCase, load_case
from breastseg.workflows.ultrasound.postprocess import MaskRule

MODEL_KIND = "breastseg.ultrasound"
MODEL_SCHEMA_VERSION = 1
DEFAULT_INPUT_SIZE = 256


DEFAULT_MODEL = "ultrasound_busi.pt"


def default_model_path() -> Path:
    """The packaged ultrasound model (trained on BUSI; see its card)."""
    from importlib import resources

    path = Path(str(resources.files("breastseg.models") / DEFAULT_MODEL))
    if not path.is_file():
        raise ModelError(
            f"no packaged ultrasound model ({DEFAULT_MODEL}) in this version; give one with --model "
            "(breastseg ultrasound train writes them)"
        )
    return path


def to_network_input(image: np.ndarray, size: int) -> np.ndarray:
    """Grayscale ``(y, x)`` 0–255 → ``(1, size, size)`` float32 in [0, 1] (anti-aliased bilinear)."""
    scaled = np.clip(np.asarray(image, np.float32) / 255.0, 0.0, 1.0)
    return np.asarray(resize(scaled, (size, size), order=1, anti_aliasing=True, preserve_range=True), np.float32)[None]


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A binary mask resized by area (the resized fraction ≥ 0.5), so thin structures are neither lost nor grown."""
    fraction = resize(np.asarray(mask, np.float32), shape, order=1, anti_aliasing=True, preserve_range=True)
    return np.asarray(fraction >= 0.5)


def training_image(case: UltrasoundCase, size: int) -> TrainImage:
    """One case as the trainer takes it: the whole image resized, the lesion label, every pixel 'tissue'."""
    image, mask = load_case(case)
    label = resize_mask(mask, (size, size)).astype(np.int64)
    return TrainImage(case.case_id, to_network_input(image, size), label, np.ones((size, size), bool))


AUGMENTATIONS = ("standard", "strong")


def ultrasound_patches(size: int, augmentation: str = "standard") -> PatchConfig:
    """Whole-image 'patches' (one per image per epoch) with the ultrasound augmentations
    (:func:`breastseg.learn.patches.augment_ultrasound`). ``standard``: flip, rotation ±10°, scale ±10 %, shift
    ±5 %, gamma, contrast ±15 %, brightness. ``strong`` (nnU-Net's ranges where ultrasound allows them): rotation
    ±15°, scale ±25 %, one axis stretched ±15 %, shift ±10 %, contrast ±25 %, and the image-quality changes —
    blur σ 0.5–1 px, resolution down to half, speckle-like multiplicative noise SD 0.1."""
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}")
    base = PatchConfig(
        size=size,
        per_image=1,
        positive_bias=0.0,
        augmentation="ultrasound",
        centring="image",
        max_rotation_deg=10.0,
    )
    if augmentation == "standard":
        return base
    return replace(
        base,
        max_rotation_deg=15.0,
        max_scale=0.25,
        us_max_stretch=0.15,
        max_shift=0.10,
        contrast_range=(0.75, 1.25),
        us_blur_sigma_px=(0.5, 1.0),
        us_low_resolution=0.5,
        us_speckle_sd=0.1,
    )


@dataclass(eq=False)
class UltrasoundModel:
    """A trained ultrasound network: configuration, weights, input size and model card, in one ``.pt`` file
    (plain tensors and JSON, loaded with ``weights_only=True``) plus a ``.card.md`` beside it."""

    net: NetConfig
    state_dict: dict[str, torch.Tensor]
    input_size: int = DEFAULT_INPUT_SIZE
    card: dict[str, Any] = field(default_factory=dict)
    rule: MaskRule = field(default_factory=MaskRule)
    #: :func:`~breastseg.workflows.ultrasound.dataset.pixel_fingerprint` of every image the network was trained
    #: or validated on (empty for models written before they were recorded): evaluation warns about leakage
    training_fingerprints: frozenset[str] = frozenset()

    def network(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        return load_network(self.net, self.state_dict, device)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        header = {
            "kind": MODEL_KIND,
            "schema_version": MODEL_SCHEMA_VERSION,
            "net": net_config_to_dict(self.net),
            "input_size": self.input_size,
            "intensity": "grayscale / 255, clipped to [0, 1]",
            "mask_rule": self.rule.to_json(),
            "training_image_fingerprints": sorted(self.training_fingerprints),
            "card": self.card,
            "breastseg_version": __version__,
        }
        return write_model_file(path, header, self.state_dict, model_card_markdown(header))

    @classmethod
    def load(cls, path: str | Path) -> UltrasoundModel:
        header, weights = read_model_file(path, MODEL_KIND, "ultrasound model")
        return cls(
            net_config_from_dict(header["net"]),
            weights,
            int(header["input_size"]),
            header["card"],
            MaskRule.from_json(header.get("mask_rule")),
            frozenset(header.get("training_image_fingerprints", ())),
        )


def model_card_markdown(header: dict[str, Any]) -> str:
    card = header.get("card", {})
    lines = [f"# {card.get('title', 'breastseg ultrasound model')}", ""]
    lines += [
        f"* **Network**: `{json.dumps(header['net'])}`",
        f"* **Input**: {header['input_size']} × {header['input_size']} px, {header['intensity']}",
        f"* **Mask**: {MaskRule.from_json(header.get('mask_rule')).describe()}",
    ]
    seen = header.get("training_image_fingerprints")
    if seen:
        lines.append(
            f"* **Training images**: {len(seen)} pixel fingerprints stored in the model file; `ultrasound evaluate` "
            "warns when it scores any of them"
        )
    lines += card_bullets(card, skip=("title",))
    lines += ["", f"Written by breastseg {header['breastseg_version']}."]
    return "\n".join(lines) + "\n"


def train_fold(
    train_cases: Sequence[UltrasoundCase],
    validation_cases: Sequence[UltrasoundCase],
    net: NetConfig,
    config: TrainConfig,
    input_size: int = DEFAULT_INPUT_SIZE,
    checkpoint: str | Path | None = None,
    description: str = "training",
    device: str | torch.device = "cpu",
) -> TrainResult:
    """Train one network on ``train_cases`` (on ``device``), keeping the epoch with the best mean Dice on the
    validation cases that have a lesion (a normal image's Dice says nothing about the lesion's outline)."""
    train_images = [training_image(c, input_size) for c in train_cases]
    validation = [training_image(c, input_size) for c in validation_cases]
    validation = [v for v in validation if v.label.any()] or validation
    return train(net, train_images, validation, config, checkpoint=checkpoint, description=description, device=device)


def train_final(
    cases: Sequence[UltrasoundCase],
    net: NetConfig,
    config: TrainConfig,
    input_size: int = DEFAULT_INPUT_SIZE,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> TrainResult:
    """The model to ship: trained on every case for exactly ``config.epochs`` epochs (take the median best
    epoch of the cross-validation), the last epoch kept — no image is held out, so none can choose an epoch."""
    images = [training_image(c, input_size) for c in cases]
    description = f"final model ({len(images)} images)"
    return train(net, images, [], config, checkpoint=checkpoint, description=description, device=device)


def predict_probability(
    nets: Sequence[torch.nn.Module], image: np.ndarray, input_size: int, multiple: int = 32, flip: bool = False
) -> np.ndarray:
    """Mean tumour probability of ``nets`` on a grayscale image ``(y, x)``, on the image's own pixel grid.

    ``flip``: test-time augmentation — also predict the left-right mirrored image (the training augmentation's
    flip) and average the two probabilities, mirrored back; one batch of two, so about 1.5–2× the time.
    """
    x = to_network_input(image, input_size)[None]
    if flip:
        both = predict_batch(nets, np.concatenate([x, x[..., ::-1]]), multiple)
        prob = 0.5 * (both[0] + both[1][:, ::-1])
    else:
        prob = predict_batch(nets, x, multiple)[0]
    return np.asarray(resize(prob, image.shape, order=1, preserve_range=True), np.float32)
