"""Normalisation limits: CT 5th/95th percentile of pooled training foreground, PET 0–80 % of the patient's max."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.workflows.specimen.normalisation import Normalisation, fit_normalisation, pet_maximum


def test_ct_limits_are_pooled_foreground_percentiles() -> None:
    # foreground HU 0..100 over two images (background −1000 must not count)
    a = np.full((10, 11), -1000.0)
    b = np.full((10, 11), -1000.0)
    a[:5, :] = np.arange(55).reshape(5, 11)
    b[:4, :] = np.arange(55, 99).reshape(4, 11)
    tissue = [a > -1000, b > -1000]
    norm = fit_normalisation("petct", [a, b], tissue)
    values = np.arange(99)
    assert (norm.ct_low_hu, norm.ct_high_hu) == pytest.approx(tuple(np.percentile(values, [5, 95])))
    assert norm.channels == ("ct", "pet")
    # other percentiles (nnU-Net's 0.5 / 99.5): by hand on 0..98, linear interpolation: 0.49 and 97.51
    wide = fit_normalisation("petct", [a, b], tissue, ct_percentiles=(0.5, 99.5))
    assert (wide.ct_low_hu, wide.ct_high_hu) == pytest.approx((0.49, 97.51))
    from breastseg.errors import InputError

    with pytest.raises(InputError, match="CT percentiles must rise"):
        fit_normalisation("petct", [a, b], tissue, ct_percentiles=(95.0, 5.0))


def test_channels_are_scaled_and_clipped() -> None:
    norm = Normalisation(("ct", "pet"), -100.0, 100.0)
    ct = np.array([[-1000.0, -100.0, 0.0, 100.0, 3000.0]])  # air, low, middle, high, metal wire
    pet = np.array([[0.0, 1.0, 2.0, 4.0, 5.0]])
    out = norm.apply(ct, pet, pet_max=5.0)
    np.testing.assert_allclose(out[0], [[0.0, 0.0, 0.5, 1.0, 1.0]])
    np.testing.assert_allclose(out[1], [[0.0, 0.25, 0.5, 1.0, 1.0]])  # 80 % of 5 SUL = 4 → 1
    assert out.dtype == np.float32
    assert Normalisation.from_json(norm.to_json()) == norm


def test_pet_maximum_over_tissue_only() -> None:
    pet = [np.array([[9.0, 2.0]]), np.array([[3.0, 1.0]])]
    tissue = [np.array([[False, True]]), np.array([[True, True]])]
    assert pet_maximum(pet, tissue) == 3.0
