"""The surface-error diagnostics on analytic shapes: normals of a ball, false positives counted by hand."""

from __future__ import annotations

import numpy as np

from breastseg.masks import depth_below_surface_mm
from breastseg.workflows.specimen.diagnostics import (
    false_positives_by_depth,
    false_positives_by_obliquity,
    false_positives_by_tumour_distance,
    false_positives_by_tumour_obliquity,
    surface_normals,
)


def _ball(spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    shape = tuple(round(30 / s) for s in spacing)
    grids = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids))
    return radius <= 12.0, radius


def test_normals_of_a_ball_point_to_its_centre_on_an_anisotropic_grid() -> None:
    spacing = (0.6, 0.4, 0.3)
    ball, _ = _ball(spacing)
    depth = depth_below_surface_mm(ball, spacing)
    normals = surface_normals(depth, spacing)
    z, y, x = (np.asarray(ball.shape) - 1) // 2
    inner_x = int(x + round(11.0 / spacing[2]))  # 1 mm inside the surface on the +x side
    assert ball[z, y, inner_x]
    np.testing.assert_allclose(normals[:, z, y, inner_x], [0.0, 0.0, -1.0], atol=0.05)  # inward: towards −x
    inner_z = int(z - round(11.0 / spacing[0]))  # and on the −z side, towards +z
    np.testing.assert_allclose(normals[:, inner_z, y, x], [1.0, 0.0, 0.0], atol=0.05)


def test_false_positives_are_binned_by_depth_and_by_the_slicing_axis() -> None:
    spacing = (0.5, 0.5, 0.5)
    ball, _ = _ball(spacing)
    depth = depth_below_surface_mm(ball, spacing)
    tumour = ball & (depth > 5.0)
    predicted = tumour | (ball & (depth <= 0.25))  # every voxel at most 0.25 mm deep is a false positive
    rows = false_positives_by_depth(predicted, tumour, ball, depth)
    first, second = rows[0], rows[1]
    assert first.rate == 1.0 and first.voxels == int(np.count_nonzero(ball & (depth <= 0.25)))
    assert second.false_positives == 0 and rows[-1].rate == 0.0
    assert sum(r.voxels for r in rows) == int(np.count_nonzero(ball & ~tumour))
    # false positives only on the ±x caps (surface normal along x): along axis 2 they are where |cos| ≈ 1
    normals = surface_normals(depth, spacing)
    caps = ball & (depth <= 1.0) & (np.abs(normals[2]) > 0.97)
    by_x = false_positives_by_obliquity(caps, tumour, ball, depth, normals, axis=2)
    by_z = false_positives_by_obliquity(caps, tumour, ball, depth, normals, axis=0)
    assert by_x[-1].rate == 1.0 and all(r.rate == 0.0 for r in by_x[:-1] if r.voxels)
    assert by_z[0].false_positives == by_x[-1].false_positives  # seen from z, the x-caps lie flat (|cos| ≈ 0)


def test_a_boundary_drawn_one_voxel_too_wide_is_counted_next_to_the_tumour() -> None:
    from scipy import ndimage

    spacing = (0.5, 0.5, 0.5)
    ball, radius = _ball(spacing)
    tumour = radius <= 5.0
    predicted = ndimage.binary_dilation(tumour)  # one voxel too wide: every false positive touches the tumour
    rows = false_positives_by_tumour_distance(predicted, tumour, ball, spacing)
    ring = int(np.count_nonzero(predicted & ~tumour))
    assert rows[0].false_positives == ring  # all within 0.25 mm (face neighbours: 0; diagonal ones: 0.21 mm)
    assert sum(r.false_positives for r in rows[1:]) == 0


def test_false_positives_beyond_the_tumours_ends_are_where_the_slice_runs_parallel_to_its_boundary() -> None:
    spacing = (0.5, 0.5, 0.5)
    ball, radius = _ball(spacing)
    tumour = radius <= 6.0
    from scipy import ndimage

    x = np.arange(ball.shape[2])[None, None, :]
    centre = (np.asarray(ball.shape) - 1) / 2

    ring = ndimage.binary_dilation(tumour) & ~tumour  # the first voxel outside the tumour (face neighbours)
    # the tumour drawn too far only at its ±x ends: beyond the caps, where the normal runs along x
    caps = ring & (np.abs(x - centre[2]) * 0.5 > 0.97 * radius)
    by_x = false_positives_by_tumour_obliquity(caps | tumour, tumour, ball, spacing, axis=2)
    by_y = false_positives_by_tumour_obliquity(caps | tumour, tumour, ball, spacing, axis=1)
    # voxelised normals of a 6 mm ball on a 0.5 mm grid stray at a cap: none below |cos| 0.5 along x, half at ≥ 0.97
    n_caps = int(np.count_nonzero(caps))
    assert sum(r.false_positives for r in by_x[1:]) == n_caps > 0 and by_x[0].false_positives == 0
    assert by_x[-1].false_positives >= n_caps / 2
    assert by_y[0].false_positives == n_caps  # seen along y, the caps lie edge-on (|cos| < 0.5)
