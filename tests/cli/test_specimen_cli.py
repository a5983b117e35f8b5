"""``breastseg specimen fit-threshold`` on phantom lamellae, and the assess command's user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from breastseg.cli.main import main
from tests.conftest import SMALL_PHANTOM_ARGS


def test_fit_threshold_from_phantom_lamellae(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    manifests = []
    for seed in (1, 2, 3):
        assert (
            main(
                [
                    "phantom",
                    "specimen",
                    "--out",
                    str(tmp_path / f"s{seed}"),
                    "--seed",
                    str(seed),
                    "--lamellae",
                    "2",
                    "--ct-spacing-mm",
                    "0.3",
                    "--pet-spacing-mm",
                    "0.6",
                    "--tumour-diameter-mm",
                    "8",
                ]
            )
            == 0
        )
        manifests += ["--manifest", str(tmp_path / f"s{seed}" / "lamellae" / "manifest.csv")]
    capsys.readouterr()
    rc = main(
        [
            "specimen",
            "fit-threshold",
            *manifests,
            "--input",
            "petct",
            "--folds",
            "3",
            "--out",
            str(tmp_path / "model.json"),
        ]
    )
    assert rc == 0
    model = json.loads((tmp_path / "model.json").read_text())
    assert len(model["folds"]) == 3 and model["input"] == "petct"
    assert all(0.05 < f["value"] < 0.9 and f["mean_training_dice"] > 0.5 for f in model["folds"])
    assert (tmp_path / "model.card.md").is_file()


def test_assess_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(
            [
                "phantom",
                "specimen",
                "--out",
                str(tmp_path / "c"),
                *SMALL_PHANTOM_ARGS,
            ]
        )
        == 0
    )
    capsys.readouterr()
    # a NIfTI PET in Bq/ml without the patient data cannot become SUL
    rc = main(
        [
            "specimen",
            "assess",
            "--ct",
            str(tmp_path / "c/ct.nii.gz"),
            "--pet",
            str(tmp_path / "c/pet.nii.gz"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("breastseg: error: PET units are unknown") and "\n" not in err
    assert not (tmp_path / "out").exists()
    rc = main(
        [
            "specimen",
            "assess",
            "--ct",
            str(tmp_path / "c/ct.nii.gz"),
            "--pet",
            str(tmp_path / "c/pet.nii.gz"),
            "--pet-units",
            "sul",  # any letter case
            "--orientation",
            "+q=lateral",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 2
    assert "--orientation takes FACE=name" in capsys.readouterr().err
