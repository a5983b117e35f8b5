"""MRI read-outs against analytic shapes and the phantom's designed kinetics."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.phantoms.dce import DcePhantomConfig, make_dce_phantom
from breastseg.workflows.mri.readouts import curve_type, longest_diameter_mm, tumour_readout


def test_longest_diameter_of_a_sphere_and_a_bar() -> None:
    spacing = (2.0, 0.5, 0.5)
    z, y, x = np.meshgrid(np.arange(30) * 2.0, np.arange(80) * 0.5, np.arange(80) * 0.5, indexing="ij")
    sphere = (z - 30) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 15.0**2
    d = longest_diameter_mm(sphere, spacing)
    assert 30.0 - 2.0 <= d <= 30.0  # voxel centres: within one (coarsest) voxel of 2r
    bar = np.zeros((5, 10, 10), bool)
    bar[2, 3, 1:9] = True  # 8 voxels in a row, 0.5 mm apart → 3.5 mm between the end centres
    assert longest_diameter_mm(bar, spacing) == pytest.approx(3.5)
    assert longest_diameter_mm(np.zeros((3, 3, 3), bool), spacing) == 0.0


def test_curve_type_thresholds() -> None:
    assert curve_type(100.0, 115.0)[0] == "persistent"
    assert curve_type(100.0, 105.0)[0] == "plateau"
    kind, change = curve_type(100.0, 80.0)
    assert kind == "washout" and change == pytest.approx(-20.0)


def test_phantom_tumour_washes_out_and_benign_focus_persists() -> None:
    p = make_dce_phantom(DcePhantomConfig(seed=4, shape=(16, 64, 72), noise_sd=0.0, motion_mm=0.0, motion_deg=0.0))
    pre = p.images["t1"].array
    post = [p.images[f"t1c_{k}"].array for k in range(1, 6)]
    spacing = p.images["t1"].spacing
    tumour = p.images["tumour"].array > 0
    r = tumour_readout(tumour, spacing, pre, post)
    assert r.volume_ml == pytest.approx(p.truth["tumour_volume_ml"])
    # designed: S1 = 2.2 S0, then −0.12 S0 per minute for 6 minutes → −0.72 / 2.2 = −32.7 %
    assert r.curve_type == "washout" and r.late_change_percent == pytest.approx(-100 * 0.72 / 2.2, abs=0.01)
    assert r.functional_volume_ml == pytest.approx(r.volume_ml)  # 120 % enhancement ≥ 70 % everywhere
    benign_mask = p.images["benign"].array > 0
    benign = tumour_readout(benign_mask, spacing, pre, post, pe_threshold=0.65)
    assert benign.curve_type == "persistent"
    assert benign.functional_volume_ml == pytest.approx(benign.volume_ml)  # 70 % enhancement ≥ 65 %
    assert tumour_readout(benign_mask, spacing, pre, post, pe_threshold=0.75).functional_volume_ml == 0.0
    fibro = tumour_readout(p.images["breast"].array > 0, spacing, pre, post)
    assert fibro.functional_volume_ml < 0.2 * fibro.volume_ml  # fat and 25 % BPE are below 70 %
