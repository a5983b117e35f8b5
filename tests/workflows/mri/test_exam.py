"""Reading DCE exams (DICOM dynamic series, files + times) and the split into single breasts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import write_image
from breastseg.workflows.mri.exam import read_dce_dicom, read_dce_files, split_laterality
from tests.io.dicom_helpers import dynamic_phase_tweak, hand_written_series


def test_dicom_dynamic_series_gives_pre_and_timed_post_phases(tmp_path: Path) -> None:
    times = {1: "101500", 2: "101630", 3: "101800"}  # pre, then +90 s, +180 s
    for p in (2, 3, 1):
        values = np.full((3, 4, 4), 10.0 * p) + np.tile([1.0, -1.0], 24).reshape(3, 4, 4)  # mean 10 p, not flat
        hand_written_series(
            tmp_path / f"p{p}",
            values,
            (2, 1, 1),
            (0, 0, 0),
            np.eye(3),
            series_uid="1.2.3",
            tweak=dynamic_phase_tweak(p, times[p]),
        )
    exam = read_dce_dicom(tmp_path)
    assert float(exam.t1.array.mean()) == 10.0
    assert [float(p.array.mean()) for p in exam.post] == [20.0, 30.0]
    assert exam.post_times_s == [90.0, 180.0]


def test_files_with_times_from_json_and_refusals(tmp_path: Path) -> None:
    img = Image(np.arange(60, dtype=np.float32).reshape(3, 4, 5), (2.0, 1.0, 1.0))
    for name in ("t1", "c1", "c2"):
        write_image(img, tmp_path / f"{name}.nii.gz")
    (tmp_path / "times.json").write_text(json.dumps({"post_times_s": [60, 150]}))
    exam = read_dce_files(
        tmp_path / "t1.nii.gz", [tmp_path / "c1.nii.gz", tmp_path / "c2.nii.gz"], tmp_path / "times.json"
    )
    assert exam.post_times_s == [60.0, 150.0] and exam.t1.spacing == (2.0, 1.0, 1.0)
    with pytest.raises(InputError, match="2 post-contrast images but 1"):
        read_dce_files(tmp_path / "t1.nii.gz", [tmp_path / "c1.nii.gz", tmp_path / "c2.nii.gz"], [60.0])
    with pytest.raises(InputError, match="must increase"):
        read_dce_files(tmp_path / "t1.nii.gz", [tmp_path / "c1.nii.gz", tmp_path / "c2.nii.gz"], [150.0, 60.0])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match=r"bad\.json"):
        read_dce_files(tmp_path / "t1.nii.gz", [tmp_path / "c1.nii.gz"], tmp_path / "bad.json")


def test_laterality_split_keeps_geometry_and_names_sides_by_lps() -> None:
    # x (array axis 2) is LPS x: higher index = patient's left; body spans x = 2 … 17, so the cut is at 10
    a = np.zeros((4, 6, 20), np.float32)
    a[:, :, 2:18] = 1.0
    a[:, :, 15] = 7.0  # a mark on the patient's left
    img = Image(a, (3.0, 1.0, 0.5), origin=(-5.0, 0.0, 0.0))
    halves = split_laterality(img)
    assert halves["right"].shape == (4, 6, 10) and halves["left"].shape == (4, 6, 10)
    assert (halves["left"].array == 7.0).any() and not (halves["right"].array == 7.0).any()
    assert halves["left"].origin == pytest.approx((-5.0 + 10 * 0.5, 0.0, 0.0))  # moved with the cut
    flipped = Image(a, (3.0, 1.0, 0.5), direction=np.diag([-1.0, 1.0, 1.0]))  # x axis now points to the right
    assert (split_laterality(flipped)["right"].array == 7.0).any()
