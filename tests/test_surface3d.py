"""The 3D view puts the surfaces where the masks are in patient coordinates and the closest approach between the
result's two points; the camera looks at the closest face across the line — checked against hand geometry."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.image import Grid
from breastseg.report.surface3d import MAX_ELEVATION, mask_surface, surface_figure, viewpoint


def _grid(direction: np.ndarray) -> Grid:
    return Grid(shape=(12, 14, 16), spacing=(0.5, 0.4, 0.3), origin=(10.0, -20.0, 5.0), direction=direction)


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0])])
def test_surface_vertices_lie_on_the_box_faces_in_lps_mm(direction: np.ndarray) -> None:
    grid = _grid(direction)
    mask = np.zeros(grid.shape, bool)
    mask[3:8, 2:10, 4:12] = True  # z 3..7, y 2..9, x 4..11
    vertices, faces = mask_surface(mask, grid)
    assert len(faces) > 0
    # marching cubes at 0.5 on a 0/1 mask: the surface half a voxel outside the outer voxel centres; by hand,
    # LPS = origin + direction · (index × spacing), index (x, y, z) in [4 - 0.5, 11 + 0.5] etc.
    corners = np.array([[x, y, z] for x in (3.5, 11.5) for y in (1.5, 9.5) for z in (2.5, 7.5)])
    world = np.array([10.0, -20.0, 5.0]) + (corners * [0.3, 0.4, 0.5]) @ direction.T
    np.testing.assert_allclose(vertices.min(axis=0), world.min(axis=0), atol=1e-6)
    np.testing.assert_allclose(vertices.max(axis=0), world.max(axis=0), atol=1e-6)
    assert mask_surface(np.zeros(grid.shape, bool), grid)[1].shape == (0, 3)


def test_the_figure_draws_the_approach_between_the_two_points() -> None:
    grid = _grid(np.eye(3))
    specimen = np.zeros(grid.shape, bool)
    specimen[1:11, 1:13, 1:15] = True
    tumour = np.zeros(grid.shape, bool)
    tumour[4:8, 5:9, 8:12] = True
    points = ([13.4, -17.6, 7.75], [14.5, -17.6, 7.75])
    fig = surface_figure(specimen, tumour, grid, points, title="margin")
    (ax,) = fig.axes
    assert {c.get_gid() for c in ax.collections} >= {"specimen-surface", "tumour-surface"}
    (line,) = [a for a in ax.lines if a.get_gid() == "closest-approach"]
    xs, ys, zs = line.get_data_3d()
    np.testing.assert_allclose(np.column_stack([xs, ys, zs]), points)
    assert ax.get_title() == "margin"


def test_the_camera_faces_the_closest_face_across_the_line() -> None:
    # the surface point to the patient's left of the tumour (+x): the camera on that side, raised 50° towards the
    # head (and kept at the readable maximum elevation)
    elevation, azimuth = viewpoint(([0.0, 0.0, 0.0], [2.0, 0.0, 0.0]))
    assert (elevation, azimuth) == pytest.approx((min(50.0, MAX_ELEVATION), 0.0))
    # posterior (+y): azimuth 90°
    assert viewpoint(([0.0, 0.0, 0.0], [0.0, 3.0, 0.0]), off_axis_deg=30.0) == pytest.approx((30.0, 90.0))
    assert viewpoint(None) == (20.0, -60.0)
