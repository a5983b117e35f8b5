"""The trainer shared by every workflow's segmentation network, 2D (specimen, ultrasound) and 3D (PET/CT, MRI).

SGD with Nesterov momentum and an L2 penalty (or Adam / AdamW); the learning rate is halved when the validation Dice
plateaus; training stops early when it has not improved for a while; the best epoch's weights are kept (or nnU-Net's
poly schedule). Each epoch draws fresh random patches (see :mod:`breastseg.learn.patches`); 3D validation volumes
are predicted whole by Gaussian-weighted sliding windows of the patch size, or by output tiles for a valid-padding
network (:func:`breastseg.predict.valid_tiles.predict_whole_volume`). Deterministic for a seed on the CPU. With a
checkpoint path, every epoch is saved (atomically) and an interrupted run resumes where it stopped. ``device``: the
CPU by default, or a CUDA GPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from breastseg.evaluation.metrics import dice
from breastseg.io.atomic import atomic_path
from breastseg.learn.losses import (
    UNKNOWN_LABEL,
    dice_ce_loss,
    generalised_dice_ce_loss,
    generalised_dice_loss,
    specimen_dice_loss,
)
from breastseg.learn.patches import PatchConfig, sample_epoch
from breastseg.nets import NetConfig, net_config_to_dict
from breastseg.nets.valid_unet import centre_crop
from breastseg.predict.slices import predict_slice
from breastseg.predict.valid_tiles import predict_whole_volume


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyper-parameters (the study tuned learning rate, batch size, L2 and the patch settings).

    Defaults finish on a CPU; the study trained 150 epochs. ``optimiser``: SGD with Nesterov momentum (the
    specimen study's), Adam (the PET/CT study's, L2 as ``weight_decay``) or AdamW (``momentum`` unused);
    ``loss``: the masked Dice loss, or Dice + cross-entropy
    (steadier early gradients on images where the lesion is a small fraction, as in ultrasound), or the generalised
    Dice loss (Sudre et al. 2017; the breast-MRI study's: both classes, each weighted by its inverse squared volume),
    alone or plus cross-entropy.

    ``schedule``: ``plateau`` halves the learning rate when the validation Dice stalls for ``lr_patience``
    epochs, stops early after ``early_stopping_patience`` and keeps the best validation epoch; ``poly`` is
    nnU-Net's: lr × (1 − epoch / epochs)^0.9 for exactly ``epochs`` epochs and the last epoch kept (validation is
    only watched), so a final model trained on all data follows the cross-validated recipe step for step.
    ``precision``: ``bfloat16`` runs the forward pass under autocast (the loss in float32; no loss scaling is
    needed for bfloat16): 1.4–1.7× faster per step on this CPU (native bfloat16; benchmarks/train_precision.py).
    """

    epochs: int = 40
    batch_size: int = 16
    learning_rate: float = 0.01
    momentum: float = 0.99
    weight_decay: float = 1e-5
    lr_patience: int = 5
    early_stopping_patience: int = 15
    patch: PatchConfig = field(default_factory=PatchConfig)
    seed: int = 0
    optimiser: Literal["sgd", "adam", "adamw"] = "sgd"
    loss: Literal["dice", "dice_ce", "generalised_dice", "generalised_dice_ce"] = "dice"
    schedule: Literal["plateau", "poly"] = "plateau"
    precision: Literal["float32", "bfloat16"] = "float32"

    @classmethod
    def fixed_schedule(
        cls,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        patch: PatchConfig,
        seed: int = 0,
        weight_decay: float = 1e-5,
        loss: Literal["dice", "dice_ce", "generalised_dice", "generalised_dice_ce"] = "dice_ce",
        precision: Literal["float32", "bfloat16"] = "float32",
    ) -> TrainConfig:
        """The nnU-Net-style recipe the PET/CT and MRI networks share: Adam, poly decay over exactly ``epochs``
        epochs, the last epoch kept (validation only watched), Dice + cross-entropy unless told otherwise."""
        return cls(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            patch=patch,
            seed=seed,
            optimiser="adam",
            loss=loss,
            schedule="poly",
            precision=precision,
        )


@dataclass(frozen=True, eq=False)
class TrainImage:
    """A normalised training image: channels ``(C, H, W)`` or ``(C, z, y, x)``, label (0/1/unknown) and tissue
    mask (where patch centres are drawn when not on the label) of the same spatial shape."""

    patient_id: str
    channels: np.ndarray
    label: np.ndarray
    tissue: np.ndarray
    focus: np.ndarray | None = None  # where PatchConfig.focus_bias centres hard-negative patches


@dataclass(eq=False)
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    best_validation_dice: float
    best_epoch: int
    history: list[dict[str, float]]
    seconds: float


def validation_dice(
    nets: Sequence[nn.Module],
    images: Sequence[TrainImage],
    multiple: int,
    window: Sequence[int] | None = None,
    net_config: object = None,
) -> float:
    """Mean over patients of the Dice of each patient's pooled slices (unknown pixels excluded), as the study.

    3D images are predicted whole (:func:`breastseg.predict.valid_tiles.predict_whole_volume`: sliding windows of
    ``window`` voxels, the training patch shape, or — for a valid-padding ``net_config`` — edge-to-edge output tiles).
    """
    by_patient: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for img in images:
        if img.channels.ndim == 4:
            if window is None:
                raise ValueError("3D validation needs the sliding-window size")
            prob = predict_whole_volume(nets, img.channels, net_config, window)
        else:
            prob = predict_slice(nets, img.channels, multiple)
        known = img.label != UNKNOWN_LABEL
        pred = (prob >= 0.5) & img.tissue
        preds, refs = by_patient.setdefault(img.patient_id, ([], []))
        preds.append(pred[known])
        refs.append(img.label[known] == 1)
    scores = [dice(np.concatenate(p), np.concatenate(r)) for p, r in by_patient.values()]
    return float(np.mean(scores)) if scores else 0.0


def no_skill_dice(images: Sequence[TrainImage]) -> float:
    """Dice of calling every tissue pixel tumour (the best constant guess), averaged like :func:`validation_dice`."""
    by_patient: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for img in images:
        known = img.label != UNKNOWN_LABEL
        preds, refs = by_patient.setdefault(img.patient_id, ([], []))
        preds.append(img.tissue[known])
        refs.append(img.label[known] == 1)
    return float(np.mean([dice(np.concatenate(p), np.concatenate(r)) for p, r in by_patient.values()]))


def _cpu_copy(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries that still use the global generator


def train(
    net_config: NetConfig,
    train_images: Sequence[TrainImage],
    validation_images: Sequence[TrainImage],
    config: TrainConfig | None = None,
    checkpoint: str | Path | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    show_progress: bool = True,
    description: str = "training",
    device: str | torch.device = "cpu",
) -> TrainResult:
    """Train one network; returns the best validation epoch's weights (with no validation images: the last
    epoch's, after ``config.epochs`` epochs — a final model trained on all data with the epoch count that
    cross-validation chose).

    Args:
        net_config: any :class:`~breastseg.nets.NetConfig` (the specimen ResU-Net, a torchvision network …).
        init_state: start from these weights (transfer learning) instead of Kaiming initialisation.
        checkpoint: a file to save every epoch to and to resume from if it exists.
        device: where the network runs (patches are drawn on the CPU); the returned weights are on the CPU.
    """
    cfg = config or TrainConfig()
    _seed_everything(cfg.seed)
    device = torch.device(device)
    net = net_config.build()
    if init_state is not None:
        net.load_state_dict(init_state)
    net.to(device)
    loss_fn = {
        "dice": specimen_dice_loss,
        "dice_ce": dice_ce_loss,
        "generalised_dice": generalised_dice_loss,
        "generalised_dice_ce": generalised_dice_ce_loss,
    }[cfg.loss]()
    optimiser: torch.optim.Optimizer
    if cfg.optimiser == "adamw":
        optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    elif cfg.optimiser == "adam":
        optimiser = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    else:
        optimiser = torch.optim.SGD(
            net.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
        )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="max", factor=0.5, patience=cfg.lr_patience)
    rng = np.random.default_rng(cfg.seed)
    state: dict[str, Any] = {
        "epoch": 0,
        "best": -1.0,
        "best_epoch": -1,
        "best_state": None,
        "history": [],
        "stale": 0,
        "seconds": 0.0,
    }
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        if saved.get("config") == asdict(cfg) and saved.get("net_config") == net_config_to_dict(net_config):
            net.load_state_dict(saved["net"])
            optimiser.load_state_dict(saved["optimiser"])
            scheduler.load_state_dict(saved["scheduler"])
            rng.bit_generator.state = saved["rng"]
            torch.set_rng_state(saved["torch_rng"])
            state = saved["state"]
    images = [t.channels for t in train_images]
    labels = [t.label for t in train_images]
    tissues = [t.tissue for t in train_images]
    focuses = [t.focus for t in train_images]
    multiple = net_config.size_multiple
    window = cfg.patch.shape(images[0].ndim - 1) if images else None

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not show_progress, transient=True) as progress:
        task = progress.add_task(description, total=cfg.epochs, completed=state["epoch"], info="")
        poly = cfg.schedule == "poly"
        while state["epoch"] < cfg.epochs and (poly or state["stale"] < cfg.early_stopping_patience):
            t0 = time.perf_counter()
            if poly:
                for group in optimiser.param_groups:
                    group["lr"] = cfg.learning_rate * (1.0 - state["epoch"] / cfg.epochs) ** 0.9
            net.train()
            x_all, y_all = sample_epoch(images, labels, tissues, cfg.patch, rng, focuses=focuses)
            losses = []
            for start in range(0, len(x_all), cfg.batch_size):
                x = torch.from_numpy(x_all[start : start + cfg.batch_size]).to(device)
                y = torch.from_numpy(y_all[start : start + cfg.batch_size])[:, None].to(device)
                optimiser.zero_grad()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bfloat16"):
                    logits = net(x)
                loss = loss_fn(logits.float(), centre_crop(y, logits.shape[2:]))
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
            state["epoch"] += 1
            if validation_images and poly:  # watched only: the last epoch is the model, and its Dice is reported
                val = validation_dice([net], validation_images, multiple, window, net_config)
                state.update(best=val, best_epoch=state["epoch"], best_state=_cpu_copy(net))
            elif validation_images:
                val = validation_dice([net], validation_images, multiple, window, net_config)
                scheduler.step(val)
                if val > state["best"]:
                    state.update(best=val, best_epoch=state["epoch"], best_state=_cpu_copy(net))
                    state["stale"] = 0
                else:
                    state["stale"] += 1
            else:  # final model on all data: fixed epochs, constant learning rate, the last epoch kept
                val = float("nan")
                state.update(best_epoch=state["epoch"], best_state=_cpu_copy(net))
            state["seconds"] += time.perf_counter() - t0
            state["history"].append(
                {
                    "epoch": state["epoch"],
                    "loss": float(np.mean(losses)),
                    "validation_dice": val,
                    "learning_rate": optimiser.param_groups[0]["lr"],
                }
            )
            progress.update(
                task,
                completed=state["epoch"],
                info=f"loss {np.mean(losses):.3f}  val Dice {val:.3f}  best {state['best']:.3f}",
            )
            if ckpt is not None:
                payload = {
                    "config": asdict(cfg),
                    "net_config": net_config_to_dict(net_config),
                    "net": net.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "state": state,
                }
                with atomic_path(ckpt) as tmp:
                    torch.save(payload, tmp)
    best_state = state["best_state"] if state["best_state"] is not None else _cpu_copy(net)
    best = float(state["best"]) if validation_images else float("nan")
    return TrainResult(best_state, best, int(state["best_epoch"]), state["history"], state["seconds"])
