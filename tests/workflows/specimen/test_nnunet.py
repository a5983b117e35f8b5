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
