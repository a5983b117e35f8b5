"""nnU-Net v2 raw layout: a lamella manifest written as a dataset reads back as the same slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.io.nnunet import unknown_label
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_lamellae, make_specimen_phantom, write_lamellae
from breastseg.workflows.specimen.lamellae import read_lamellae, read_manifest
from breastseg.workflows.specimen.nnunet import nnunet_from_manifest


def test_round_trip_through_nnunet_raw(tmp_path: Path) -> None:
    ph = make_specimen_phantom(
        SpecimenPhantomConfig(
            seed=9, ct_spacing_mm=0.4, pet_spacing_mm=0.8, specimen_size_mm=(20.0, 24.0, 30.0), tumour_diameter_mm=8.0
        )
    )
    manifest = write_lamellae(make_lamellae(ph, 2), tmp_path / "lam", "patientA", tumour_type="ILC")
    root = nnunet_from_manifest(read_manifest(manifest), tmp_path / "Dataset501_Lamellae")
    doc = json.loads((root / "dataset.json").read_text())
    assert doc["channel_names"] == {"0": "CT", "1": "PET"} and unknown_label(doc) == 2
    assert sorted(p.name for p in (root / "imagesTr").iterdir())[:2] == [
        "patientA_L00_0000.nii.gz",
        "patientA_L00_0001.nii.gz",
    ]
    a, b = read_lamellae([manifest]), read_lamellae([root])
    assert [s.patient_id for s in b] == ["patientA", "patientA"] and {s.tumour_type for s in b} == {"ILC"}
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.label, y.label)
        np.testing.assert_allclose(x.ct, y.ct)


def test_wrong_channels_are_refused(tmp_path: Path) -> None:
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MR"}, "labels": {"background": 0}}))
    with pytest.raises(InputError, match="channel_names"):
        read_manifest(tmp_path)


def _foreign_dataset(tmp_path: Path) -> Path:
    """A dataset written by another tool: nnU-Net's files, no breastseg patient map; two patients, two slices each."""
    ph = make_specimen_phantom(
        SpecimenPhantomConfig(
            seed=3, ct_spacing_mm=0.4, pet_spacing_mm=0.8, specimen_size_mm=(20.0, 24.0, 30.0), tumour_diameter_mm=8.0
        )
    )
    rows = []
    for patient in ("P01", "P02"):
        manifest = write_lamellae(make_lamellae(ph, 2), tmp_path / patient, patient)
        rows += [{**r, "slice_id": f"{patient}_s{i}"} for i, r in enumerate(read_manifest(manifest))]
    root = nnunet_from_manifest(rows, tmp_path / "Dataset502_Foreign")
    doc = json.loads((root / "dataset.json").read_text())
    del doc["breastseg"]
    (root / "dataset.json").write_text(json.dumps(doc))
    return root


def test_a_dataset_without_patients_is_refused_not_split_by_slice(tmp_path: Path) -> None:
    root = _foreign_dataset(tmp_path)
    with pytest.raises(InputError, match=r"no patient for case 'P01_s0'.*--patient-pattern"):
        read_manifest(root)
    rows = read_manifest(root, patient_pattern=r"^(?P<patient>[^_]+)_")
    assert [r["patient_id"] for r in rows] == ["P01", "P01", "P02", "P02"]
    assert [r["patient_id"] for r in read_manifest(root, patient_pattern=r"(P\d+)")] == ["P01", "P01", "P02", "P02"]
    with pytest.raises(InputError, match="does not match the patient pattern"):
        read_manifest(root, patient_pattern=r"^Q")
    with pytest.raises(InputError, match="not a regular expression"):
        read_manifest(root, patient_pattern=r"(")


def test_fit_threshold_reads_patients_by_pattern_and_says_how_many_folds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from breastseg.cli.main import main

    root = _foreign_dataset(tmp_path)
    out = tmp_path / "thr.json"
    args = ["specimen", "fit-threshold", "--manifest", str(root), "--out", str(out), "--folds", "5"]
    assert main(args) == 2
    assert "--patient-pattern" in capsys.readouterr().err
    assert main([*args, "--patient-pattern", "^(?P<patient>[^_]+)_"]) == 0
    said = capsys.readouterr().out
    assert "2 folds instead of 5: only 2 patients" in said
    card = json.loads(out.read_text())["card"]
    assert card["training_patients"] == ["P01", "P02"] and card["folds"] == 2
