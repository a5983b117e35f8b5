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

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import torch
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
from breastseg.predict.device import Precision
from breastseg.predict.slices import predict_slice
from breastseg.predict.valid_tiles import predict_whole_volume
from breastseg.progress import bar as progress_bar


class Optimiser(StrEnum):
    """SGD with Nesterov momentum (the specimen study's), Adam (the PET/CT study's) or AdamW."""

    SGD = "sgd"
    ADAM = "adam"
    ADAMW = "adamw"


class Loss(StrEnum):
    """The masked Dice loss, Dice + cross-entropy, the generalised Dice loss, or generalised Dice + cross-entropy."""

    DICE = "dice"
    DICE_CE = "dice_ce"
    GENERALISED_DICE = "generalised_dice"
    GENERALISED_DICE_CE = "generalised_dice_ce"


class Schedule(StrEnum):
    """``plateau``: halve on a stalled validation Dice, stop early, keep the best epoch; ``poly``: nnU-Net's."""

    PLATEAU = "plateau"
    POLY = "poly"


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
    optimiser: Optimiser = Optimiser.SGD
    loss: Loss = Loss.DICE
    schedule: Schedule = Schedule.PLATEAU
    precision: Precision = Precision.FLOAT32

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
        loss: Loss = Loss.DICE_CE,
        precision: Precision = Precision.FLOAT32,
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
            optimiser=Optimiser.ADAM,
            loss=loss,
            schedule=Schedule.POLY,
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


@dataclass
class TrainState:
    """Where a run stands: what a checkpoint saves and a resumed run continues from."""

    epoch: int = 0
    best: float = -1.0
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    stale: int = 0  # epochs since the validation Dice last improved (plateau schedule)
    seconds: float = 0.0


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch, as a progress callback receives it (``validation_dice`` NaN without validation)."""

    description: str
    epoch: int
    epochs: int
    loss: float
    validation_dice: float
    best: float
    learning_rate: float
    seconds: float


EpochCallback = Callable[[EpochReport], None]


def make_loss(cfg: TrainConfig) -> nn.Module:
    """The loss ``cfg.loss`` names (unknown-label pixels left out; see :mod:`breastseg.learn.losses`)."""
    losses = {
        "dice": specimen_dice_loss,
        "dice_ce": dice_ce_loss,
        "generalised_dice": generalised_dice_loss,
        "generalised_dice_ce": generalised_dice_ce_loss,
    }
    return losses[cfg.loss]()


def make_optimiser(net: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum, Adam or AdamW, with ``cfg.weight_decay`` as the L2 penalty."""
    if cfg.optimiser == "adamw":
        return torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    if cfg.optimiser == "adam":
        return torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        net.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )


def set_poly_learning_rate(optimiser: torch.optim.Optimizer, base: float, done: int, total: int) -> None:
    """nnU-Net's poly decay: ``base × (1 − done / total)^0.9`` after ``done`` of ``total`` epochs (or steps)."""
    for group in optimiser.param_groups:
        group["lr"] = base * (1.0 - done / total) ** 0.9


@dataclass(eq=False)
class _Run:
    """Everything one training run holds between its steps."""

    cfg: TrainConfig
    net_config: NetConfig
    net: nn.Module
    device: torch.device
    loss_fn: nn.Module
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    rng: np.random.Generator
    train_images: Sequence[TrainImage]
    validation_images: Sequence[TrainImage]
    state: TrainState = field(default_factory=TrainState)

    @property
    def poly(self) -> bool:
        return self.cfg.schedule == "poly"

    def keep_going(self) -> bool:
        """Epochs left, and (plateau schedule) the validation Dice improved within the patience."""
        if self.state.epoch >= self.cfg.epochs:
            return False
        return self.poly or self.state.stale < self.cfg.early_stopping_patience

    def set_learning_rate(self) -> None:
        """Poly: lr × (1 − epoch / epochs)^0.9; plateau: the scheduler's own (stepped in :meth:`validate`)."""
        if self.poly:
            set_poly_learning_rate(self.optimiser, self.cfg.learning_rate, self.state.epoch, self.cfg.epochs)

    def train_epoch(self) -> float:
        """One epoch of fresh random patches; returns the mean batch loss."""
        cfg, net = self.cfg, self.net
        images = [t.channels for t in self.train_images]
        x_all, y_all = sample_epoch(
            images,
            [t.label for t in self.train_images],
            [t.tissue for t in self.train_images],
            cfg.patch,
            self.rng,
            focuses=[t.focus for t in self.train_images],
        )
        net.train()
        losses = []
        for start in range(0, len(x_all), cfg.batch_size):
            x = torch.from_numpy(x_all[start : start + cfg.batch_size]).to(self.device)
            y = torch.from_numpy(y_all[start : start + cfg.batch_size])[:, None].to(self.device)
            self.optimiser.zero_grad()
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bfloat16"):
                logits = net(x)
            loss = self.loss_fn(logits.float(), centre_crop(y, logits.shape[2:]))
            loss.backward()
            self.optimiser.step()
            losses.append(float(loss.detach()))
        self.state.epoch += 1
        return float(np.mean(losses)) if losses else float("nan")

    def validate(self) -> float:
        """Score the epoch and keep the model it chooses; returns the validation Dice (NaN without validation).

        Poly: validation is only watched and the last epoch is the model; plateau: the best epoch is kept and the
        scheduler steps on the Dice; no validation images (a final model on all data): the last epoch is kept."""
        state = self.state
        if not self.validation_images:
            state.best_epoch, state.best_state = state.epoch, _cpu_copy(self.net)
            return float("nan")
        window = self.cfg.patch.shape(self.train_images[0].channels.ndim - 1) if self.train_images else None
        val = validation_dice(
            [self.net], self.validation_images, self.net_config.size_multiple, window, self.net_config
        )
        if self.poly:
            state.best, state.best_epoch, state.best_state = val, state.epoch, _cpu_copy(self.net)
            return val
        self.scheduler.step(val)
        if val > state.best:
            state.best, state.best_epoch, state.best_state, state.stale = val, state.epoch, _cpu_copy(self.net), 0
        else:
            state.stale += 1
        return val

    def record(self, loss: float, val: float, seconds: float, description: str) -> EpochReport:
        """Add the epoch to the history; returns its report."""
        self.state.seconds += seconds
        lr = float(self.optimiser.param_groups[0]["lr"])
        self.state.history.append(
            {"epoch": self.state.epoch, "loss": loss, "validation_dice": val, "learning_rate": lr}
        )
        return EpochReport(
            description, self.state.epoch, self.cfg.epochs, loss, val, self.state.best, lr, self.state.seconds
        )

    def fingerprint(self) -> dict[str, Any]:
        return {"config": asdict(self.cfg), "net_config": net_config_to_dict(self.net_config)}

    def save(self, path: Path) -> None:
        """The whole run (weights, optimiser, scheduler, both random generators, state), written atomically."""
        payload = {
            **self.fingerprint(),
            "net": self.net.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "state": asdict(self.state),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    def resume(self, path: Path) -> None:
        """Continue from ``path`` when it holds a run of the same configuration and network (else start afresh)."""
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if {k: saved.get(k) for k in ("config", "net_config")} != self.fingerprint():
            return
        self.net.load_state_dict(saved["net"])
        self.optimiser.load_state_dict(saved["optimiser"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        self.state = TrainState(**saved["state"])

    def result(self) -> TrainResult:
        state = self.state
        best_state = state.best_state if state.best_state is not None else _cpu_copy(self.net)
        best = float(state.best) if self.validation_images else float("nan")
        return TrainResult(best_state, best, int(state.best_epoch), state.history, state.seconds)


@contextmanager
def console_progress(description: str, total: int, completed: int, enabled: bool = True) -> Iterator[EpochCallback]:
    """A progress callback for :func:`train`, shown as :func:`breastseg.progress.bar` shows counted work: a bar
    on a terminal; in a log or pipe, one line per epoch at most every 30 s (and the last), on stderr — so that a
    long job run in the background shows that it moves; nothing with ``--quiet``."""
    if not enabled:
        yield lambda _report: None
        return
    with progress_bar(description, total, completed) as shown:

        def update(r: EpochReport) -> None:
            validation = "" if math.isnan(r.validation_dice) else f", validation Dice {r.validation_dice:.3f}"
            best = "" if r.best < 0 else f" (best {r.best:.3f})"
            shown.update(completed=r.epoch, info=f"loss {r.loss:.3f}{validation}{best}")

        yield update


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
    progress: EpochCallback | None = None,
) -> TrainResult:
    """Train one network; returns the best validation epoch's weights (with no validation images: the last
    epoch's, after ``config.epochs`` epochs — a final model trained on all data with the epoch count that
    cross-validation chose).

    Args:
        net_config: any :class:`~breastseg.nets.NetConfig` (the specimen ResU-Net, a torchvision network …).
        init_state: start from these weights (transfer learning) instead of Kaiming initialisation.
        checkpoint: a file to save every epoch to and to resume from if it exists.
        device: where the network runs (patches are drawn on the CPU); the returned weights are on the CPU.
        progress: called after every epoch with its :class:`EpochReport` (default: :func:`console_progress`
            when ``show_progress``).
    """
    cfg = config or TrainConfig()
    _seed_everything(cfg.seed)
    run_on = torch.device(device)
    net = net_config.build()
    if init_state is not None:
        net.load_state_dict(init_state)
    net.to(run_on)
    optimiser = make_optimiser(net, cfg)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="max", factor=0.5, patience=cfg.lr_patience)
    rng = np.random.default_rng(cfg.seed)
    run = _Run(cfg, net_config, net, run_on, make_loss(cfg), optimiser, scheduler, rng, train_images, validation_images)
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        run.resume(ckpt)
    with console_progress(description, cfg.epochs, run.state.epoch, show_progress and progress is None) as bar:
        report = progress or bar
        while run.keep_going():
            t0 = time.perf_counter()
            run.set_learning_rate()
            loss = run.train_epoch()
            val = run.validate()
            report(run.record(loss, val, time.perf_counter() - t0, description))
            if ckpt is not None:
                run.save(ckpt)
    return run.result()
