"""Training fan-out on Dask distributed: cross-validation folds and Optuna trials as tasks on a cluster's workers.

The training data are sent to the workers once (``scatter``); each fold or trial is one task. Optuna trials share
one study through its storage — PostgreSQL for a cluster (every worker must reach it), or a SQLite file on a
file system all workers see — so the TPE sampler of every task learns from every finished trial. A worker that
dies has its task re-run elsewhere (Dask's retries); a trial it left running stays RUNNING in the study and is
not counted as complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from breastseg.errors import InputError, MissingExtra
from breastseg.learn.splits import InnerFold
from breastseg.learn.trainer import TrainImage

if TYPE_CHECKING:
    import optuna

    from breastseg.workflows.specimen.search import SearchSpace

T = TypeVar("T")


def dask_client(scheduler: str) -> Any:
    """A Dask distributed client connected to ``scheduler`` (``tcp://host:8786``), or a clear error."""
    try:
        from distributed import Client
    except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
        raise MissingExtra("batch", "dask distributed") from exc
    try:
        return Client(scheduler, timeout=30)
    except OSError as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from exc


def map_on_dask(scheduler: str, function: Callable[..., T], shared: Any, items: Sequence[Any], name: str) -> list[T]:
    """``[function(shared, item) for item in items]`` on the cluster, in order; ``shared`` is sent to every
    worker once. The tasks are long (a training each) and Dask cannot know it: item ``k`` is placed on worker
    ``k mod n`` so that every worker has its share from the start, and may run elsewhere when that worker is busy
    or gone. Each task may be retried twice on another worker if its worker dies."""
    with dask_client(scheduler) as client:
        handle = client.scatter(shared, broadcast=True)
        workers = sorted(client.scheduler_info()["workers"])
        futures = [
            client.submit(
                function,
                handle,
                item,
                key=f"{name}-{k}",
                pure=False,
                retries=2,
                workers=[workers[k % len(workers)]] if workers else None,
                allow_other_workers=True,
            )
            for k, item in enumerate(items)
        ]
        return list(client.gather(futures))


def _one_trial(shared: tuple[Sequence[TrainImage], Sequence[InnerFold]], job: dict[str, Any]) -> int:
    from breastseg.workflows.specimen.search import run_search

    images, inner = shared
    study = run_search(
        images,
        inner,
        storage=job["storage"],
        study_name=job["study_name"],
        n_trials=1,
        epochs=job["epochs"],
        space=job["space"],
        seed=job["seed"],
        sampler_seed=job["sampler_seed"],
    )
    return len(study.trials)


def run_search_on_dask(
    scheduler: str,
    images: Sequence[TrainImage],
    inner: Sequence[InnerFold],
    *,
    storage: str | Path,
    study_name: str,
    n_trials: int,
    epochs: int,
    space: SearchSpace | None = None,
    seed: int = 0,
) -> optuna.Study:
    """Run ``n_trials`` trials of one study as ``n_trials`` tasks on the cluster (each with its own sampler seed;
    training seeds as in :func:`breastseg.workflows.specimen.search.run_search`); returns the study from its storage."""
    import optuna

    from breastseg.workflows.specimen.search import SearchSpace, open_study, storage_url

    if not images:
        raise InputError("no training images for the search")
    url = storage_url(storage)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_absolute():
        raise InputError(f"{storage}: a cluster's workers need an absolute storage path or postgresql://…")
    open_study(storage, study_name, seed)  # create the tables and the study once, before the workers race
    jobs = [
        {
            "storage": str(storage),
            "study_name": study_name,
            "epochs": epochs,
            "space": space or SearchSpace.study(),
            "seed": seed,
            "sampler_seed": seed * 100_003 + k + 1,
        }
        for k in range(n_trials)
    ]
    map_on_dask(scheduler, _one_trial, (list(images), list(inner)), jobs, f"breastseg-trial-{study_name}")
    return optuna.load_study(study_name=study_name, storage=url)
