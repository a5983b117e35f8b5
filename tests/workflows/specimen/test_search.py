"""Optuna search: SQLite by default, and one study shared by two processes through a real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna

from breastseg.learn.splits import stratified_group_folds
from breastseg.workflows.specimen.normalisation import fit_normalisation
from breastseg.workflows.specimen.search import SearchSpace, best_configuration, run_search, storage_url
from breastseg.workflows.specimen.train import to_train_images
from tests.conftest import SMALL_PHANTOM_ARGS
from tests.servers import postgres_server

BIN = Path(sys.executable).parent / "breastseg"


def test_storage_urls(tmp_path: Path) -> None:
    assert storage_url(tmp_path / "s.db") == f"sqlite:///{tmp_path / 's.db'}"
    assert storage_url("postgresql://u@h:5/d") == "postgresql://u@h:5/d"


def test_search_in_sqlite_and_best_configuration(tmp_path: Path, phantom_lamellae: list) -> None:
    norm = fit_normalisation("petct", [s.ct for s in phantom_lamellae], [s.tissue for s in phantom_lamellae])
    images = to_train_images(phantom_lamellae, norm)
    types = {s.patient_id: s.tumour_type for s in phantom_lamellae}
    folds = stratified_group_folds(types, 2, seed=0)
    from breastseg.learn.splits import InnerFold

    inner = [InnerFold(tuple(folds[1]), tuple(folds[0])), InnerFold(tuple(folds[0]), tuple(folds[1]))]
    db = tmp_path / "study.db"
    study = run_search(images, inner, storage=db, study_name="t", n_trials=2, epochs=1, space=SearchSpace.small())
    assert db.is_file() and len(study.trials) == 2
    # resuming the study adds trials to the same file
    again = run_search(images, inner, storage=db, study_name="t", n_trials=1, epochs=1, space=SearchSpace.small())
    assert len(again.trials) == 3
    net, cfg = best_configuration(again, SearchSpace.small(), in_channels=2, epochs=5)
    assert net.depth in SearchSpace.small().depth and cfg.epochs == 5
    assert all(0.0 <= t.value <= 1.0 for t in again.trials)


def _manifests(root: Path) -> list[str]:
    args = []
    for seed in (1, 2, 3, 4):
        subprocess.run(
            [
                str(BIN),
                "phantom",
                "specimen",
                "--out",
                str(root / f"s{seed}"),
                "--seed",
                str(seed),
                "--lamellae",
                "2",
                *SMALL_PHANTOM_ARGS,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        args += ["--manifest", str(root / f"s{seed}" / "lamellae" / "manifest.csv")]
    return args


def test_two_processes_share_one_study_in_postgresql(tmp_path: Path) -> None:
    manifests = _manifests(tmp_path / "data")
    with postgres_server(tmp_path / "pg") as url:
        command = [
            str(BIN),
            "specimen",
            "search",
            *manifests,
            "--space",
            "small",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--outer",
            "2",
            "--inner",
            "2",
            "--storage",
            url,
            "--study-name",
            "shared",
        ]
        workers = [
            subprocess.Popen([*command, "--seed", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(2)
        ]
        for w in workers:
            _, err = w.communicate(timeout=300)
            assert w.returncode == 0, err.decode()[-8000:]
        study = optuna.load_study(study_name="shared", storage=url)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(complete) == 4
        assert sorted(t.number for t in complete) == [0, 1, 2, 3]
        assert 0.0 <= study.best_value <= 1.0
