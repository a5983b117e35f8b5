"""Hyper-parameter search with Optuna (TPE), as the specimen study tuned its Residual U-Net.

A trial proposes an architecture and training settings from the study's space (depth, first-layer channels,
kernel size, normalisation, dropout, learning rate, batch size, patch size, patches per image, positive-centre
bias, L2 penalty); its value is the mean best validation Dice over the inner folds (one model per inner fold).
Studies live in SQLite by default (a file) or in PostgreSQL (``postgresql://user@host:port/db``), where
several machines can run trials of one study at the same time.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.errors import InputError, MissingExtra
from breastseg.learn.patches import PatchConfig
from breastseg.learn.splits import InnerFold
from breastseg.learn.trainer import TrainConfig, TrainImage, TrainResult, train
from breastseg.nets.resunet import Norm, ResUNetConfig

try:
    import optuna
    from sqlalchemy.exc import SQLAlchemyError
except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
    raise MissingExtra("search", "optuna") from exc

#: called with (trial number, inner fold index, network configuration, training result)
ModelHook = Callable[[int, int, ResUNetConfig, TrainResult], None]


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of every searched hyper-parameter (``study()``: the study's; ``small()``: minutes on a CPU)."""

    depth: tuple[int, ...] = (3, 4, 5)
    first_channels: tuple[int, ...] = (8, 16, 32)
    kernel_size: tuple[int, ...] = (3, 5)
    norm: tuple[str, ...] = ("instance", "batch", "layer", "group")
    dropout: tuple[float, float] = (0.0, 0.3)
    learning_rate: tuple[float, float] = (1e-3, 1e-1)
    batch_size: tuple[int, ...] = (8, 16, 32)
    patch_size: tuple[int, ...] = (64, 96, 128)
    patches_per_image: tuple[int, int] = (4, 32)
    positive_bias: tuple[float, float] = (0.0, 1.0)
    weight_decay: tuple[float, float] = (1e-6, 1e-3)

    @classmethod
    def study(cls) -> SearchSpace:
        return cls()

    @classmethod
    def small(cls) -> SearchSpace:
        return cls(
            depth=(2, 3),
            first_channels=(4, 8),
            kernel_size=(3,),
            batch_size=(8, 16),
            patch_size=(32, 48),
            patches_per_image=(2, 8),
        )


def suggest(
    trial: optuna.Trial | optuna.trial.FixedTrial, space: SearchSpace, in_channels: int, epochs: int, seed: int
) -> tuple[ResUNetConfig, TrainConfig]:
    """Draw one configuration from ``space`` (log scale for learning rate and L2)."""
    net = ResUNetConfig(
        in_channels=in_channels,
        depth=trial.suggest_categorical("depth", list(space.depth)),
        first_channels=trial.suggest_categorical("first_channels", list(space.first_channels)),
        kernel_size=trial.suggest_categorical("kernel_size", list(space.kernel_size)),
        norm=_norm(trial.suggest_categorical("norm", list(space.norm))),
        dropout=trial.suggest_float("dropout", *space.dropout),
    )
    patch = PatchConfig(
        size=trial.suggest_categorical("patch_size", list(space.patch_size)),
        per_image=trial.suggest_int("patches_per_image", *space.patches_per_image),
        positive_bias=trial.suggest_float("positive_bias", *space.positive_bias),
    )
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=trial.suggest_categorical("batch_size", list(space.batch_size)),
        learning_rate=trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        weight_decay=trial.suggest_float("weight_decay", *space.weight_decay, log=True),
        patch=patch,
        seed=seed,
    )
    return net, cfg


def _norm(value: str) -> Norm:
    if value not in ("instance", "batch", "layer", "group"):
        raise InputError(f"unknown normalisation {value!r}")
    return value  # type: ignore[return-value]


def storage_url(storage: str | Path) -> str:
    """A SQLAlchemy URL: ``postgresql://…`` and ``sqlite://…`` pass through; a path becomes SQLite."""
    text = str(storage)
    if text.startswith(("postgresql://", "postgresql+", "sqlite://", "mysql://")):
        return text
    return f"sqlite:///{Path(text).resolve()}"


def train_inner_fold(
    net: ResUNetConfig, images: Sequence[TrainImage], fold: InnerFold, cfg: TrainConfig
) -> TrainResult:
    """Train one model on ``fold``'s training patients, validated (early stopping) on its validation patients."""
    train_set, val_set = set(fold.train), set(fold.validation)
    return train(
        net,
        [i for i in images if i.patient_id in train_set],
        [i for i in images if i.patient_id in val_set],
        cfg,
        show_progress=False,
    )


def make_objective(
    images: Sequence[TrainImage],
    inner: Sequence[InnerFold],
    space: SearchSpace,
    epochs: int,
    seed: int = 0,
    on_model: ModelHook | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective: mean best validation Dice of one model per inner fold.

    ``on_model(trial_number, inner_fold, net_config, result)`` receives every trained model, so a caller can
    keep the best trial's models instead of training them again.
    """
    in_channels = int(images[0].channels.shape[0])

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        net, cfg = suggest(trial, space, in_channels, epochs, seed + trial.number)
        scores = []
        for k, fold in enumerate(inner):
            result = train_inner_fold(net, images, fold, cfg)
            if on_model is not None:
                on_model(trial.number, k, net, result)
            scores.append(result.best_validation_dice)
            trial.report(float(np.mean(scores)), k)
        return float(np.mean(scores))

    return objective


def open_study(storage: str | Path, study_name: str, seed: int = 0, attempts: int = 6) -> optuna.Study:
    """Create or join a study (its TPE sampler seeded with ``seed``). Workers that start together on an empty
    database race to create its tables; the losers wait a moment and join (each after a random, growing pause)."""
    rng = random.Random(seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for attempt in range(attempts):
        try:
            return optuna.create_study(
                study_name=study_name,
                storage=storage_url(storage),
                direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=seed),
                load_if_exists=True,
            )
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(rng.uniform(0.2, 1.0) * (attempt + 1))
    raise AssertionError("unreachable")


def run_search(
    images: Sequence[TrainImage],
    inner: Sequence[InnerFold],
    *,
    storage: str | Path,
    study_name: str,
    n_trials: int,
    epochs: int,
    space: SearchSpace | None = None,
    seed: int = 0,
    on_model: ModelHook | None = None,
    sampler_seed: int | None = None,
) -> optuna.Study:
    """Run ``n_trials`` trials of a (possibly shared) study; other processes may add trials concurrently.

    ``seed`` seeds each trial's training (``seed + trial number``); ``sampler_seed`` (default ``seed``) the TPE
    sampler — processes sharing one study give different ones, or they propose the same parameters.
    """
    if not images:
        raise InputError("no training images for the search")
    study = open_study(storage, study_name, seed if sampler_seed is None else sampler_seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = make_objective(images, inner, space or SearchSpace.study(), epochs, seed, on_model)
    if n_trials > 0:
        study.optimize(objective, n_trials=n_trials)
    return study


def best_configuration(
    study: optuna.Study, space: SearchSpace, in_channels: int, epochs: int, seed: int = 0
) -> tuple[ResUNetConfig, TrainConfig]:
    """The best trial's parameters as configurations (replayed through :func:`suggest`)."""
    trial = optuna.trial.FixedTrial(study.best_params)
    return suggest(trial, space, in_channels, epochs, seed)


def summarise(study: optuna.Study) -> dict[str, Any]:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {
        "study": study.study_name,
        "complete_trials": len(done),
        "best_value": study.best_value if done else None,
        "best_params": study.best_params if done else None,
    }
