"""The optional breast-mask network: a small 3D U-Net on the whole T1 at lower resolution (Hirsch et al. 2022: "a
separate U-Net operating on the entire image at lower resolution", trained on 100 manually segmented slices).

Input: the pre-contrast T1 resampled to ``coarse_factor`` × the in-plane voxel size (linear) and divided by its
own 99th percentile (the breast is not known yet, so not the breast-based scaling of the harmonisation). Network:
MONAI's ``UNet`` (:class:`breastseg.nets.MonaiUNetConfig`, one input channel) trained by the project's trainer on
patches (Dice + cross-entropy, Adam, poly decay). Prediction: Gaussian sliding windows on the coarse grid, the
probability resampled (linear) onto the image's own grid, thresholded at 0.5, the largest connected component.

It replaces :func:`breastseg.workflows.mri.breast_mask.breast_mask` where the threshold-and-chest-wall rule fails
(implants, a thorax that does not fill the field of view); a tumour model records which breast mask it was
trained with (:class:`breastseg.workflows.mri.inputs.MriPreprocessing`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from breastseg._version import __version__
from breastseg.errors import InputError, ModelError
from breastseg.image import Image
from breastseg.learn.model_file import card_bullets, read_model_file, write_model_file
from breastseg.learn.patches import PatchConfig
from breastseg.learn.trainer import TrainConfig, TrainImage, train
from breastseg.learn.volume_patches import VolumeAugmentation
from breastseg.masks import largest_component
from breastseg.nets import MonaiUNetConfig, load_network, net_config_from_dict, net_config_to_dict
from breastseg.predict.device import resolve_device
from breastseg.predict.sliding import predict_sliding

MODEL_KIND = "breastseg.mri.breast"


@dataclass(frozen=True)
class BreastNetRecipe:
    """A small network (defaults train in minutes on a CPU)."""

    first_channels: int = 8
    patch_size: tuple[int, int, int] = (16, 48, 48)
    coarse_factor: float = 2.0
    epochs: int = 20
    patches_per_scan: int = 8
    batch_size: int = 4
    learning_rate: float = 1e-3
    seed: int = 0

    def net_config(self) -> MonaiUNetConfig:
        f = self.first_channels
        config = MonaiUNetConfig(in_channels=1, channels=(f, 2 * f, 4 * f, 8 * f, 16 * f), num_res_units=1)
        if any(p % m for p, m in zip(self.patch_size, config.axis_multiples(), strict=True)):
            raise InputError(f"breast network: patch {self.patch_size} must be multiples of {config.axis_multiples()}")
        return config

    def train_config(self) -> TrainConfig:
        rotation = VolumeAugmentation(
            rotation_probability=0.3,
            max_rotation_deg=10.0,
            scale_probability=0.0,
            elastic_probability=0.0,
            mirror_probability=0.5,
            gamma_probability=0.3,
            in_plane_rotation=True,
        )
        patch = PatchConfig(size=self.patch_size, per_image=self.patches_per_scan, positive_bias=0.5, volume=rotation)
        return TrainConfig.fixed_schedule(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patch=patch,
            seed=self.seed,
        )


def coarse_input(t1: Image, factor: float) -> Image:
    """The T1 on a grid ``factor`` × coarser in-plane (same field of view), divided by its 99th percentile."""
    z, y, x = t1.spacing
    coarse = t1.resample_onto(t1.grid.with_spacing((z, y * factor, x * factor)), order=1)
    top = float(np.percentile(coarse.array, 99))
    if top <= 0:
        raise InputError("breast network: the T1 is empty or all dark")
    return coarse.with_array((coarse.array / top).astype(np.float32), units="1")


@dataclass(eq=False)
class BreastModel:
    """A trained breast-mask network."""

    recipe: BreastNetRecipe
    state_dict: dict[str, torch.Tensor]
    card: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        header = {
            "kind": MODEL_KIND,
            "net": net_config_to_dict(self.recipe.net_config()),
            "recipe": asdict(self.recipe),
            "card": self.card,
            "breastseg_version": __version__,
        }
        lines = ["# Model card: breastseg breast-mask network (breast DCE-MRI)", ""]
        lines += card_bullets(self.card)
        lines += [f"* **Recipe**: `{header['recipe']}`", "", f"Written by breastseg {__version__}."]
        return write_model_file(path, header, self.state_dict, "\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> BreastModel:
        header, weights = read_model_file(path, MODEL_KIND, "breast-mask model")
        recipe_doc = dict(header["recipe"])
        recipe_doc["patch_size"] = tuple(recipe_doc["patch_size"])
        recipe = BreastNetRecipe(**recipe_doc)
        if net_config_from_dict(header["net"]) != recipe.net_config():
            raise ModelError(f"{path}: the network does not match the recipe")
        return cls(recipe, weights, header["card"])

    def mask(self, t1: Image, device: str = "auto") -> np.ndarray:
        """The breast (bool) on ``t1``'s own grid."""
        coarse = coarse_input(t1, self.recipe.coarse_factor)
        net = load_network(self.recipe.net_config(), self.state_dict, resolve_device(device))
        prob = predict_sliding([net], coarse.array[None], self.recipe.patch_size)
        on_grid = coarse.with_array(prob.astype(np.float32)).resample_onto(t1, order=1).array
        above = on_grid > 0.5
        return largest_component(above, connectivity=6) if above.any() else above

    def as_function(self, device: str = "auto") -> Callable[[Image], np.ndarray]:
        """A drop-in for :func:`breastseg.workflows.mri.breast_mask.breast_mask`."""
        return lambda image: self.mask(image, device)


def train_breast_network(
    cases: Sequence[tuple[str, Image, np.ndarray]],
    recipe: BreastNetRecipe,
    device: str = "auto",
    show_progress: bool = True,
) -> BreastModel:
    """Train on ``(case_id, T1, breast mask on the T1's grid)`` cases (all trained; the last epoch is the model)."""
    if not cases:
        raise InputError("the breast network needs at least one case")
    images = []
    for case_id, t1, mask in cases:
        if mask.shape != t1.shape:
            raise InputError(f"{case_id}: breast mask shape {mask.shape} ≠ T1 {t1.shape}")
        coarse = coarse_input(t1, recipe.coarse_factor)
        label = t1.with_array(np.asarray(mask, np.uint8), units="label").resample_onto(coarse, order=0).array
        images.append(TrainImage(case_id, coarse.array[None], label.astype(np.int64), np.ones(label.shape, bool)))
    run_on = resolve_device(device)
    result = train(
        recipe.net_config(),
        images,
        [],
        recipe.train_config(),
        show_progress=show_progress,
        description="breast network",
        device=run_on,
    )
    card = {
        "trained": datetime.now(UTC).strftime("%Y-%m-%d"),
        "training_cases": ", ".join(c for c, _, _ in cases),
        "seconds": f"{result.seconds:.0f}",
        "device": str(run_on),
        "intended_use": "research; the breast as a prior for the tumour network, not a diagnosis",
    }
    return BreastModel(recipe, result.state_dict, card)
