"""PERCIST 1.0 categories and Δ% by hand, at and around each threshold."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.workflows.petct.response import (
    LiverReference,
    liver_reference,
    percent_change,
    percent_changes,
    percist,
)


def test_percent_change() -> None:
    assert percent_change(10.0, 6.8) == pytest.approx(-32.0)
    assert percent_change(0.0, 3.0) is None and percent_change(None, 3.0) is None and percent_change(2.0, None) is None
    changes = percent_changes({"sul_peak": 10.0, "tlg": 200.0, "pbi": 0.0}, {"sul_peak": 5.0, "tlg": 260.0, "pbi": 0.1})
    assert changes == {"sul_peak": -50.0, "tlg": pytest.approx(30.0), "pbi": None}


@pytest.mark.parametrize(
    ("baseline", "followup", "new", "expected"),
    [
        (10.0, 6.5, False, "PMR"),  # −35 %, −3.5 SUL
        (4.0, 2.8, False, "PMR"),  # exactly −30 % and −1.2 SUL
        (2.0, 1.3, False, "SMD"),  # −35 % but only −0.7 SUL
        (10.0, 7.5, False, "SMD"),  # −25 %
        (5.0, 6.6, False, "PMD"),  # +32 %, +1.6 SUL
        (5.0, 6.5, False, "SMD"),  # exactly +30 %: PERCIST asks for more than 30 %
        (2.0, 2.7, False, "SMD"),  # +35 % but only +0.7 SUL
        (10.0, 3.0, True, "PMD"),  # a new lesion outweighs the fall
        (10.0, None, False, "CMR"),  # nothing remains
        (None, 4.0, True, "PMD"),  # lesions only at follow-up
        (None, None, False, "not evaluable"),
    ],
)
def test_categories_by_hand(baseline: float | None, followup: float | None, new: bool, expected: str) -> None:
    result = percist(baseline, followup, new)
    assert result.category == expected, result.reason
    if expected in ("CMR", "PMR"):
        assert result.responder is True
    elif expected in ("SMD", "PMD"):
        assert result.responder is False


def test_liver_background_decides_measurability_and_complete_response() -> None:
    liver = LiverReference(mean_sul=1.5, sd_sul=0.3)
    assert liver.measurability_threshold == pytest.approx(2.85)
    assert percist(2.5, 1.0, liver=liver).category == "not evaluable"
    cmr = percist(6.0, 1.4, liver=liver)
    assert cmr.category == "CMR" and "liver background" in cmr.reason
    assert percist(6.0, 1.6, liver=liver).category == "PMR"  # −73 % but still above the liver
    assert cmr.change_percent == pytest.approx((1.4 - 6.0) / 6.0 * 100)
    assert cmr.change_sul == pytest.approx(-4.6)


def test_liver_reference_is_a_3cm_sphere_of_normal_liver() -> None:
    spacing = (4.0, 4.0, 4.0)
    shape = (30, 30, 30)
    liver = np.zeros(shape, bool)
    liver[2:28, 2:28, 2:20] = True
    lesion = np.zeros(shape, bool)
    lesion[2:28, 2:28, 2:8] = True  # a slab of lesion along one side
    rng = np.random.default_rng(0)
    sul = rng.normal(1.8, 0.2, shape)
    sul[lesion] = 9.0
    ref = liver_reference(sul, liver, spacing, lesion)
    # the deepest normal-liver voxel, 15 mm sphere around it: computed here by hand
    normal = liver & ~lesion
    centre = (15, 15, 14)  # middle of the normal part: z 2..27, y 2..27, x 8..19
    zz, yy, xx = np.meshgrid(*[(np.arange(30) - c) * 4.0 for c in centre], indexing="ij")
    sphere = (zz**2 + yy**2 + xx**2 <= 15.0**2) & normal
    assert ref.mean_sul == pytest.approx(sul[sphere].mean(), abs=0.02)
    assert ref.sd_sul == pytest.approx(0.2, abs=0.05)  # no lesion voxel leaks in
    with pytest.raises(InputError, match="liver mask is empty"):
        liver_reference(sul, np.zeros(shape, bool), spacing)
    with pytest.raises(InputError, match="liver mask shape"):
        liver_reference(sul, np.zeros((4, 4, 3), bool), spacing)
