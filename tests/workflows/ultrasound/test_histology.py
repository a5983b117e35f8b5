"""Landmark registration recovers a known affine within a pixel, and the warped annotation lands where the
analytic transform puts it."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.image import Grid, Image
from breastseg.registration import register_landmarks
from breastseg.workflows.ultrasound.histology import pixels_to_mm, transfer_annotation

US = Grid((200, 300), (0.1, 0.1), (0.0, 0.0), np.eye(2))  # ultrasound: 30 × 20 mm at 0.1 mm
HISTO = Grid((400, 500), (0.05, 0.05), (-2.0, 1.0), np.eye(2))  # slide: 25 × 20 mm at 0.05 mm
ANGLE = np.deg2rad(12.0)
MATRIX = np.array([[np.cos(ANGLE), -np.sin(ANGLE)], [np.sin(ANGLE), np.cos(ANGLE)]]) @ np.array(
    [[0.85, 0.06], [0.0, 0.9]]
)
SHIFT = np.array([1.5, 2.0])


def true_map(us_mm: np.ndarray) -> np.ndarray:
    """The known transform, ultrasound mm → slide mm (rotation, anisotropic shrinkage, shear, shift)."""
    return us_mm @ MATRIX.T + SHIFT


def _landmarks(n: int, noise_px: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    us_xy = np.column_stack([rng.uniform(20, 280, n), rng.uniform(20, 180, n)])  # (column, row) pixels
    slide_mm = true_map(pixels_to_mm(US, us_xy))
    slide_xy = HISTO.world_to_index(slide_mm)[:, ::-1] + rng.normal(0, noise_px, (n, 2))
    return us_xy, slide_xy


@pytest.mark.parametrize("noise_px", [0.0, 0.5])
def test_recovers_a_known_affine_within_one_pixel(noise_px: float) -> None:
    us_xy, slide_xy = _landmarks(8, noise_px)
    fixed, moving = pixels_to_mm(US, us_xy), pixels_to_mm(HISTO, slide_xy)
    reg = register_landmarks(fixed, moving, "affine")
    corners = pixels_to_mm(US, np.array([[0, 0], [299, 0], [0, 199], [299, 199], [150, 100]]))
    error_px = np.linalg.norm(reg.map_points(corners) - true_map(corners), axis=1) / HISTO.spacing[0]
    assert error_px.max() < 1.0
    if noise_px == 0.0:
        assert reg.rms_mm < 1e-6 and np.max(reg.leave_one_out_mm) < 1e-6
    else:  # residuals reflect the landmark noise (0.5 px = 0.025 mm per axis)
        assert 0.005 < reg.rms_mm < 0.06


def test_warped_annotation_matches_the_analytic_one() -> None:
    # an ellipse annotated on the slide, in slide mm
    idx = np.indices(HISTO.shape).reshape(2, -1).T
    pts = HISTO.index_to_world(idx)
    centre = true_map(np.array([[15.0, 10.0]]))[0]
    d = pts - centre
    inside = (d[:, 0] / 4.0) ** 2 + (d[:, 1] / 2.5) ** 2 <= 1.0
    annotation = Image(inside.reshape(HISTO.shape), HISTO.spacing, HISTO.origin, HISTO.direction)
    ultrasound = Image(np.zeros(US.shape, np.float32), US.spacing, US.origin, US.direction)
    us_xy, slide_xy = _landmarks(6)
    transfer = transfer_annotation(annotation, ultrasound, slide_xy, us_xy)
    # expected: ultrasound pixels whose image under the true map falls inside the ellipse
    us_pts = US.index_to_world(np.indices(US.shape).reshape(2, -1).T)
    e = true_map(us_pts) - centre
    expected = ((e[:, 0] / 4.0) ** 2 + (e[:, 1] / 2.5) ** 2 <= 1.0).reshape(US.shape)
    got = transfer.mask.array
    assert got.dtype == bool and transfer.mask.grid.same_as(US)
    assert np.count_nonzero(got ^ expected) <= 0.03 * expected.sum()  # boundary pixels only
    summary = transfer.summary()
    assert summary["landmarks"] == 6 and summary["residual_rms_mm"] < 1e-4


def test_bad_landmarks() -> None:
    with pytest.raises(InputError, match="at least 3"):
        register_landmarks(np.zeros((2, 2)), np.zeros((2, 2)))
    line = np.column_stack([np.arange(5.0), 2 * np.arange(5.0)])
    with pytest.raises(InputError, match="collinear"):
        register_landmarks(line, line)
    with pytest.raises(InputError, match="equal shape"):
        register_landmarks(np.zeros((4, 2)), np.zeros((5, 2)))
