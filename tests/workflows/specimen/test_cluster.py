"""Training fan-out on a real Dask cluster (a scheduler and two workers on loopback): Optuna trials of one study in
a real PostgreSQL, run as tasks on both workers; cross-validation members trained as tasks, one per fold, giving
the same bundle as the local loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest

from breastseg.learn.patches import PatchConfig
from breastseg.learn.splits import InnerFold, stratified_group_folds
from breastseg.learn.trainer import TrainConfig
from breastseg.nets.resunet import ResUNetConfig
from breastseg.workflows.specimen.cluster import run_search_on_dask
from breastseg.workflows.specimen.normalisation import fit_normalisation
from breastseg.workflows.specimen.search import SearchSpace
from breastseg.workflows.specimen.train import ResUNetTraining, to_train_images, train_bundle
from tests.servers import dask_cluster, postgres_server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dask_cluster(tmp_path_factory.mktemp("dask"), workers=2) as (address, _procs):
        yield address


def test_optuna_trials_run_on_both_workers_into_one_postgresql_study(
    cluster: str, phantom_lamellae: list, tmp_path: Path
) -> None:
    norm = fit_normalisation("petct", [s.ct for s in phantom_lamellae], [s.tissue for s in phantom_lamellae])
    images = to_train_images(phantom_lamellae, norm)
    folds = stratified_group_folds({s.patient_id: s.tumour_type for s in phantom_lamellae}, 2, seed=0)
    inner = [InnerFold(tuple(folds[1]), tuple(folds[0]))]
    with postgres_server(tmp_path / "pg") as url:
        study = run_search_on_dask(
            cluster, images, inner, storage=url, study_name="fanout", n_trials=4, epochs=1, space=SearchSpace.small()
        )
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert sorted(t.number for t in complete) == [0, 1, 2, 3]
        workers = {t.user_attrs["worker"] for t in complete}
        assert len(workers) == 2  # both workers ran trials of the one study
        assert len({tuple(sorted(t.params.items())) for t in complete}) == 4  # different proposals per task
        assert optuna.load_study(study_name="fanout", storage=url).best_value == study.best_value


def test_cross_validation_members_train_on_the_cluster_as_locally(cluster: str, phantom_lamellae: list) -> None:
    spec = ResUNetTraining(
        inputs="petct",
        net=ResUNetConfig(depth=2, first_channels=4),
        train=TrainConfig(epochs=2, patch=PatchConfig(size=32, per_image=2), batch_size=4, seed=3),
        folds=2,
        seed=1,
    )
    local = train_bundle(phantom_lamellae, spec, show_progress=False)
    remote = train_bundle(phantom_lamellae, spec, scheduler=cluster)
    assert [m.fold for m in remote.members] == ["fold0", "fold1"]
    for a, b in zip(local.members, remote.members, strict=True):
        assert a.validation_patients == b.validation_patients and a.training_patients == b.training_patients
        # the same seeds, the same data: the same weights (to float32 round-off across processes)
        for key, value in a.state_dict.items():
            np.testing.assert_allclose(b.state_dict[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-5, err_msg=key)
