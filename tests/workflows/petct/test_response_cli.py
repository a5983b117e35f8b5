"""`breastseg petct response` on phantom patients: the designed PERCIST response comes back, with the new lesion
found through registration, and the baseline mask written on the follow-up grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from breastseg.cli.main import main
from breastseg.io import read_image


@pytest.mark.parametrize(("response", "new"), [("PMR", 0), ("SMD", 0), ("PMD", 1), ("CMR", 0)])
def test_response_of_phantom_patients(tmp_path: Path, response: str, new: int) -> None:
    patient = tmp_path / "patient"
    make = ["phantom", "petct", "--out", str(patient), "--seed", "4", "--response", response]
    assert main([*make, "--ct-spacing-mm", "4", "--pet-spacing-mm", "6"]) == 0
    out = tmp_path / "resp"
    args = ["petct", "response", "--baseline", str(patient / "baseline"), "--followup", str(patient / "followup")]
    assert main([*args, "--out", str(out)]) == 0
    result = json.loads((out / "response.json").read_text())
    assert result["percist"]["category"] == response, result["percist"]["reason"]
    assert result["new_lesions"]["count"] == new
    assert result["percist"]["liver_reference"]["mean_sul"] > 0
    mtv_change = result["change_percent"]["mtv_ml"]
    assert {"PMR": mtv_change < -30, "SMD": abs(mtv_change) < 5, "PMD": mtv_change > 30, "CMR": mtv_change == -100}[
        response
    ]
    mip = np.asarray(Image.open(out / "mip.png").convert("RGB")).astype(int)
    red = (mip[..., 0] > 200) & (mip[..., 1] < 90) & (mip[..., 2] < 90)
    right_half = red[:, mip.shape[1] // 2 :]  # the follow-up panel
    assert red.sum() > 20 and (right_half.sum() == 0) == (response == "CMR")  # outlines where lesions remain
    warped = read_image(out / "baseline_lesions_on_followup.nii.gz")
    followup_pet = read_image(patient / "followup" / "pet.nii.gz")
    assert warped.grid.same_as(followup_pet.grid) and warped.array.any()


def test_missing_mask_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    patient = tmp_path / "patient"
    assert main(["phantom", "petct", "--out", str(patient), "--ct-spacing-mm", "4", "--pet-spacing-mm", "6"]) == 0
    (patient / "followup" / "lesions.nii.gz").unlink()
    args = ["petct", "response", "--baseline", str(patient / "baseline"), "--followup", str(patient / "followup")]
    assert main([*args, "--out", str(tmp_path / "r")]) == 2
    assert "no lesion mask lesions.nii.gz" in capsys.readouterr().err
