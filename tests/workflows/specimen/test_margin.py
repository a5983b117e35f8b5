"""Margin read-out on analytic cases: a sphere in a box has a known margin to every face."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.image import Grid
from breastseg.masks import depth_below_surface_mm
from breastseg.workflows.specimen.margin import assess_margin, describe_interval, margin_interval, members_positive

SPACING = 0.2


def box_and_sphere(gap_to_right_mm: float, radius_mm: float = 4.0) -> tuple[np.ndarray, np.ndarray, Grid]:
    """A 24 × 20 × 30 mm box (one voxel of air around it) with a sphere ``gap`` mm inside its −x face."""
    shape = (122, 102, 152)
    grid = Grid(shape, (SPACING,) * 3, (0.0, 0.0, 0.0), np.eye(3))
    box = np.zeros(shape, bool)
    box[1:-1, 1:-1, 1:-1] = True
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    # the box's −x face (voxel edge) lies at x = 0.5 voxel; put the sphere's edge gap mm further in
    cx = 0.5 + (gap_to_right_mm + radius_mm) / SPACING
    cz, cy = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    sphere = ((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) * SPACING**2 <= radius_mm**2
    return sphere & box, box, grid


@pytest.mark.parametrize("gap", [0.6, 1.0, 2.0, 5.0])
def test_sphere_in_a_box_margin_within_one_voxel(gap: float) -> None:
    tumour, box, grid = box_and_sphere(gap)
    r = assess_margin(tumour, box, grid)
    assert r.min_margin_mm == pytest.approx(gap, abs=SPACING)
    assert r.status == "negative"
    assert r.closest_face == "right"  # −x in LPS is the patient's right
    # the point lies on the sphere, on the side facing −x
    assert r.closest_point_mm[0] == pytest.approx(0.5 * SPACING + gap, abs=SPACING)
    # per-face margins: the other faces are analytic too (box 1..121 × 1..101 × 1..151 voxels)
    faces = r.per_face_margin_mm
    assert faces["right"] == pytest.approx(gap, abs=SPACING)
    centre_x_mm = 0.5 * SPACING + gap + 4.0
    assert faces["left"] == pytest.approx(
        (151 - 0.5) * SPACING - centre_x_mm - 4.0 + 0.5 * SPACING - SPACING, abs=SPACING
    )
    assert faces["anterior"] == pytest.approx(faces["posterior"], abs=SPACING)


def test_touching_tumour_is_positive() -> None:
    tumour, box, grid = box_and_sphere(0.0)
    r = assess_margin(tumour, box, grid)
    assert r.min_margin_mm == 0.0 and r.status == "positive"


def test_threshold_is_configurable() -> None:
    tumour, box, grid = box_and_sphere(1.0)
    assert assess_margin(tumour, box, grid, threshold_mm=2.0).status == "positive"


def test_empty_tumour_is_an_explicit_negative() -> None:
    _, box, grid = box_and_sphere(1.0)
    r = assess_margin(np.zeros_like(box), box, grid)
    assert r.status == "negative" and r.min_margin_mm is None
    assert r.reason == "no tumour predicted in the specimen"
    assert r.as_dict()["min_margin_mm"] is None


def test_ensemble_agreement_and_face_names() -> None:
    near, box, grid = box_and_sphere(0.0)
    far, _, _ = box_and_sphere(3.0)
    names = {"+x": "lateral", "-x": "medial", "+y": "deep", "-y": "superficial", "+z": "superior", "-z": "inferior"}
    depth = depth_below_surface_mm(box, grid.spacing)
    calls = members_positive([near, far, far, near, np.zeros_like(box)], depth, threshold_mm=1.0)
    assert calls == [True, False, False, True, False]
    assert members_positive([far], depth, threshold_mm=3.5) == [True]
    r = assess_margin(far, box, grid, member_calls=calls[:4], face_names=names, depth=depth)
    assert r.ensemble_positive_fraction == 0.5
    assert r.closest_face == "medial"
    assert set(r.per_face_margin_mm) == set(names.values())


def soft_sphere(gap_mm: float, shape: tuple[int, int, int] = (122, 102, 152)) -> np.ndarray:
    """Tumour probability 1 within 3 mm of the centre of :func:`box_and_sphere`'s sphere (radius 4 mm, ``gap_mm``
    inside the −x face), falling linearly to 0 at 5 mm: ≥ 0.5 is the 4 mm sphere, ≥ 0.3 a 4.4 mm, ≥ 0.7 a 3.6 mm one."""
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    cx, cz, cy = 0.5 + (gap_mm + 4.0) / SPACING, (shape[0] - 1) / 2, (shape[1] - 1) / 2
    rho = np.sqrt((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) * SPACING
    return np.clip(1.0 - (rho - 3.0) / 2.0, 0.0, 1.0)


def test_margin_interval_is_the_margin_of_the_tumour_drawn_wider_and_narrower() -> None:
    tumour, box, grid = box_and_sphere(2.0)
    depth = depth_below_surface_mm(box, grid.spacing)
    margin = assess_margin(tumour, box, grid, depth=depth).min_margin_mm
    low, high = margin_interval(soft_sphere(2.0), box, depth, margin, (0.3, 0.7))
    # by hand: the ≥ 0.3 sphere reaches 0.4 mm further out, the ≥ 0.7 one stops 0.4 mm short
    assert low == pytest.approx(2.0 - 0.4, abs=SPACING) and high == pytest.approx(2.0 + 0.4, abs=SPACING)
    assert low < margin < high
    wider = margin_interval(soft_sphere(2.0), box, depth, margin, (0.1, 0.9))
    assert wider[0] == pytest.approx(2.0 - 0.8, abs=SPACING) and wider[1] == pytest.approx(2.0 + 0.8, abs=SPACING)
    text = describe_interval({"margin_interval_mm": [low, high], "margin_interval_probabilities": [0.3, 0.7]})
    assert text == f"{low:.2f}–{high:.2f} mm (tumour drawn at probability ≥ 0.3 / ≥ 0.7)"


def test_margin_interval_is_open_above_when_no_voxel_is_sure_and_always_holds_the_read_margin() -> None:
    _, box, grid = box_and_sphere(2.0)
    depth = depth_below_surface_mm(box, grid.spacing)
    faint = 0.6 * soft_sphere(2.0)  # nothing reaches 0.7
    low, high = margin_interval(faint, box, depth, 1.5, (0.3, 0.7))
    assert high is None and low is not None and low <= 1.5
    assert "no voxel reaches 0.7" in (
        describe_interval({"margin_interval_mm": [low, high], "margin_interval_probabilities": [0.3, 0.7]}) or ""
    )
    # a read margin outside the two masks' margins widens the interval to contain it
    assert margin_interval(soft_sphere(2.0), box, depth, 5.0, (0.3, 0.7))[1] == 5.0
    assert margin_interval(np.zeros(box.shape), box, depth, None) == (None, None)


def test_interval_upper_end_is_the_farthest_narrow_mask_and_open_when_one_is_empty() -> None:
    """1 mm voxels, a 20-voxel cube of tissue: a mask k voxels in from its surface has margin k mm (a voxel next
    to the outside is 0 mm). The upper end is the farthest narrow mask's; an empty one leaves it open; the read
    margin widens the interval where it lies outside."""
    from breastseg.workflows.specimen.margin import interval_from_masks

    box = np.zeros((22, 22, 22), bool)
    box[1:21, 1:21, 1:21] = True
    depth = depth_below_surface_mm(box, (1.0, 1.0, 1.0))

    def cube(k: int) -> np.ndarray:
        mask = np.zeros_like(box)
        mask[1 + k : 21 - k, 1 + k : 21 - k, 1 + k : 21 - k] = True
        return mask

    assert interval_from_masks(cube(2), [cube(5), cube(7)], depth, None) == (2.0, 7.0)
    assert interval_from_masks(cube(2), [cube(7), cube(5)], depth, 3.0) == (2.0, 7.0)
    assert interval_from_masks(cube(2), [cube(5), np.zeros_like(box)], depth, None) == (2.0, None)
    assert interval_from_masks(cube(2), [cube(5)], depth, 6.0) == (2.0, 6.0)


def test_a_negative_margin_whose_interval_reaches_the_rule_is_flagged_unsettled() -> None:
    """Negative at 0.45 mm, but the generous contour reaches 0.08 mm (≤ the 0.1 mm rule, and 0.1 mm exactly, as
    the rule counts it): flagged, naming both numbers. Clear of the rule (0.2 mm), a positive read-out (its own
    error is the safe one), and a result without an interval: not flagged."""
    from breastseg.workflows.specimen.margin import MarginResult, unsettled_negative

    def result(status: str, margin: float, interval: tuple[float | None, float | None] | None) -> MarginResult:
        return MarginResult(status, margin, 0.1, interval_mm=interval)

    warning = unsettled_negative(result("negative", 0.45, (0.08, 0.9)))
    assert warning is not None and "0.45 mm" in warning and "0.08 mm" in warning and "0.1 mm rule" in warning
    assert unsettled_negative(result("negative", 0.45, (0.1, None))) is not None
    assert unsettled_negative(result("negative", 0.45, (0.2, 0.9))) is None
    assert unsettled_negative(result("positive", 0.05, (0.0, 0.3))) is None
    assert unsettled_negative(result("negative", 0.45, None)) is None


@pytest.mark.parametrize(("gap_voxels", "status"), [(0, "positive"), (1, "positive"), (2, "negative")])
def test_a_gap_of_exactly_the_threshold_is_positive(gap_voxels: int, status: str) -> None:
    """0.1 mm CT voxels: one voxel of tissue between tumour and air is a 0.1 mm margin, positive by the rule
    (≤ 0.1 mm), although a float32 distance map reads it as 0.1000000015 mm."""
    shape, spacing = (20, 20, 20), 0.1
    grid = Grid(shape, (spacing,) * 3, (0.0, 0.0, 0.0), np.eye(3))
    box = np.zeros(shape, bool)
    box[1:-1, 1:-1, 1:-1] = True
    tumour = np.zeros(shape, bool)
    tumour[6:12, 6:12, 1 + gap_voxels : 8] = True  # gap_voxels of tissue inside the −x face
    depth = depth_below_surface_mm(box, (spacing,) * 3)
    assert depth.dtype == np.float32 and float(depth[10, 10, 2]) != 0.1  # the float32 reading
    r = assess_margin(tumour, box, grid, depth=depth)
    assert r.min_margin_mm == pytest.approx(gap_voxels * spacing, abs=1e-6)
    assert r.status == status
    assert members_positive([tumour], depth, 0.1) == [status == "positive"]


def _ramp_tumour(gap_mm: float, ramp_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A probability that falls linearly from 1 to 0 over ``ramp_mm`` across the sphere's edge (0.5 on it), the
    sphere ``gap_mm`` inside the box's −x face; returns probability, box, depth."""
    _, box, grid = box_and_sphere(gap_mm)
    z, y, x = np.ogrid[: box.shape[0], : box.shape[1], : box.shape[2]]
    cz, cy, cx = (box.shape[0] - 1) / 2, (box.shape[1] - 1) / 2, 0.5 + (gap_mm + 4.0) / SPACING
    r = np.sqrt((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) * SPACING
    probability = np.clip(0.5 - (r - 4.0) / ramp_mm, 0.0, 1.0).astype(np.float32) * box
    return probability, box, depth_below_surface_mm(box, grid.spacing)


@pytest.mark.parametrize(
    ("gap", "ramp", "band", "settled"),
    [
        (1.0, 0.4, 0.15, True),  # negative: even the mask at 0.35 stays 0.9 mm inside
        (0.0, 0.4, 0.15, True),  # positive: the mask at 0.65 still touches the surface
        (0.4, 2.0, 0.25, False),  # the 0.5 mask is 0.4 mm in, the 0.25 mask reaches the surface (0.5 mm further)
        (0.4, 2.0, 0.05, True),  # a narrower band: the 0.45 mask reaches 0.1 mm further only, 0.3 mm inside
    ],
)
def test_a_status_is_settled_when_the_band_around_the_threshold_cannot_change_it(
    gap: float, ramp: float, band: float, settled: bool
) -> None:
    from breastseg.workflows.specimen.margin import status_is_settled

    probability, box, depth = _ramp_tumour(gap, ramp)
    assert status_is_settled(probability, box, depth, 0.1, band) is settled
