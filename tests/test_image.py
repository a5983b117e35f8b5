"""The Image model: geometry conventions, SimpleITK round trips, resampling, cropping and padding."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from breastseg.errors import InputError
from breastseg.image import Grid, Image, bounding_box


def test_sitk_round_trip_keeps_geometry_exactly(oblique_image: Image) -> None:
    back = Image.from_sitk(oblique_image.to_sitk())
    np.testing.assert_array_equal(back.array, oblique_image.array)
    assert back.spacing == oblique_image.spacing
    assert back.origin == oblique_image.origin
    np.testing.assert_array_equal(back.direction, oblique_image.direction)


def test_index_to_world_matches_simpleitk(oblique_image: Image) -> None:
    ref = oblique_image.to_sitk()
    for idx_zyx in [(0, 0, 0), (6, 10, 12), (3, 2, 9)]:
        expected = ref.TransformIndexToPhysicalPoint([int(i) for i in idx_zyx[::-1]])
        np.testing.assert_allclose(oblique_image.grid.index_to_world(idx_zyx), expected, atol=1e-9)
    pt = ref.TransformContinuousIndexToPhysicalPoint([1.5, 2.25, 3.75])
    np.testing.assert_allclose(oblique_image.grid.world_to_index(pt), [3.75, 2.25, 1.5], atol=1e-9)


def test_array_axis_order_is_zyx() -> None:
    img = Image(np.zeros((4, 5, 6)), spacing=(3.0, 2.0, 1.0))
    s = img.to_sitk()
    assert s.GetSize() == (6, 5, 4)
    assert s.GetSpacing() == (1.0, 2.0, 3.0)


def _sphere(grid: Grid, centre_xyz: np.ndarray, radius_mm: float) -> np.ndarray:
    idx = np.indices(grid.shape).reshape(grid.ndim, -1).T
    world = grid.index_to_world(idx)
    return (np.linalg.norm(world - centre_xyz, axis=1) <= radius_mm).reshape(grid.shape)


@pytest.mark.parametrize("order", [0, 1, 3])
def test_resampling_onto_another_grid_preserves_sphere_volume(order: int) -> None:
    radius = 8.0
    src_grid = Grid((48, 50, 52), (0.5, 0.6, 0.55), (-14.0, -15.0, -12.0), np.eye(3))
    centre = src_grid.index_to_world(np.asarray(src_grid.shape) / 2.0)
    sphere = _sphere(src_grid, centre, radius)
    img = Image(sphere.astype(np.float32), src_grid.spacing, src_grid.origin, src_grid.direction)
    from tests.conftest import oblique_direction

    target = Grid((40, 44, 42), (0.7, 0.65, 0.75), tuple(centre - 13.0), oblique_direction())
    out = img.resample_onto(target, order=order)
    mask = out.array > 0.5 if order else out.array.astype(bool)
    analytic = 4.0 / 3.0 * np.pi * radius**3
    measured = mask.sum() * target.voxel_volume_mm3
    assert abs(measured - analytic) / analytic < 0.01
    # the sphere lands where it physically is: centroid within half a voxel
    centroid = target.index_to_world(np.argwhere(mask).mean(axis=0))
    assert np.linalg.norm(centroid - centre) < 0.35


def test_resample_to_spacing_keeps_field_of_view() -> None:
    img = Image(np.ones((10, 20, 30), np.float32), spacing=(2.0, 1.0, 0.5), origin=(5.0, 6.0, 7.0))
    out = img.resample_to_spacing(1.0)
    assert out.shape == (20, 20, 15)
    np.testing.assert_allclose(out.grid.physical_size_mm, img.grid.physical_size_mm)
    # first voxel edge unchanged: origin − spacing/2 stays put (x, y, z order)
    np.testing.assert_allclose(
        np.asarray(out.origin) - np.asarray(out.spacing[::-1]) / 2,
        np.asarray(img.origin) - np.asarray(img.spacing[::-1]) / 2,
    )
    assert np.allclose(out.array, 1.0)


def test_cubic_resampling_reproduces_smooth_function() -> None:
    # a smooth function sampled on a coarse grid and resampled (order 3) must match its analytic values
    grid = Grid((30, 30, 30), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    z, y, x = np.indices(grid.shape).astype(float)
    f = np.sin(x / 5.0) + np.cos(y / 7.0) * z / 30.0
    fine = grid.with_spacing(0.5)
    out = Image(f.astype(np.float32), grid.spacing, grid.origin).resample_onto(fine, order=3)
    zz, yy, xx = (np.indices(fine.shape) * 0.5 - 0.25).astype(float)
    truth = np.sin(xx / 5.0) + np.cos(yy / 7.0) * zz / 30.0
    inner = (slice(6, -6),) * 3
    assert np.max(np.abs(out.array[inner] - truth[inner])) < 2e-3


def test_crop_and_pad_move_origin_with_first_voxel(oblique_image: Image) -> None:
    cropped = oblique_image.crop((slice(2, 5), slice(3, 9), slice(1, 12)))
    assert cropped.shape == (3, 6, 11)
    np.testing.assert_allclose(cropped.grid.index_to_world([0, 0, 0]), oblique_image.grid.index_to_world([2, 3, 1]))
    assert cropped.array[1, 2, 3] == oblique_image.array[3, 5, 4]
    padded = cropped.pad([(2, 0), (3, 1), (1, 1)], value=-1000)
    np.testing.assert_allclose(padded.grid.index_to_world([0, 0, 0]), oblique_image.grid.index_to_world([0, 0, 0]))
    assert padded.array[0, 0, 0] == -1000
    assert padded.array[2, 3, 1] == cropped.array[0, 0, 0]


def test_bounding_box() -> None:
    m = np.zeros((5, 6, 7), bool)
    m[1:3, 2, 4:6] = True
    assert bounding_box(m) == (slice(1, 3), slice(2, 3), slice(4, 6))
    assert bounding_box(m, margin=2) == (slice(0, 5), slice(0, 5), slice(2, 7))
    assert bounding_box(np.zeros((3, 3), bool)) is None


def test_bool_mask_survives_sitk_and_nearest_resampling() -> None:
    m = np.zeros((6, 6, 6), bool)
    m[2:4, 2:4, 2:4] = True
    img = Image(m, spacing=(1.0, 1.0, 1.0))
    out = img.resample_onto(img.grid, order=0)
    assert out.array.dtype == bool
    np.testing.assert_array_equal(out.array, m)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"array": np.zeros((2, 3, 4, 5)), "spacing": (1, 1, 1, 1)}, "2D or 3D"),
        ({"array": np.zeros((3, 4)), "spacing": (1.0, 1.0, 1.0)}, "spacing has 3 values"),
        ({"array": np.zeros((3, 4)), "spacing": (1.0, -1.0)}, "positive"),
        ({"array": np.zeros((3, 4)), "spacing": (1.0, 1.0), "direction": [[1, 1], [0, 1]]}, "orthonormal"),
        ({"array": np.zeros((0, 4)), "spacing": (1.0, 1.0)}, "empty"),
    ],
)
def test_bad_images_raise_input_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Image(**kwargs)


def test_resampling_a_2d_image_onto_a_3d_grid_is_refused(oblique_image: Image) -> None:
    with pytest.raises(InputError, match="2D image onto a 3D grid"):
        Image(np.zeros((4, 4)), spacing=(1.0, 1.0)).resample_onto(oblique_image)


def test_to_sitk_matches_sitk_resample_independently(oblique_image: Image) -> None:
    # our resample_onto against SimpleITK's own functional Resample with the same reference image
    ref = sitk.Image([9, 8, 5], sitk.sitkFloat32)
    ref.SetSpacing((1.1, 0.8, 2.0))
    ref.SetOrigin(oblique_image.origin)
    ref.SetDirection(tuple(oblique_image.direction.ravel()))
    expected = sitk.GetArrayFromImage(
        sitk.Resample(oblique_image.to_sitk(), ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    )
    got = oblique_image.resample_onto(Image.from_sitk(ref), order=1).array
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def _sitk_bspline(image: Image, grid: Grid, fill: float) -> np.ndarray:
    """SimpleITK's cubic B-spline resampling, called directly (the peer the axis-by-axis path must equal)."""
    f = sitk.ResampleImageFilter()
    f.SetSize([int(s) for s in grid.shape[::-1]])
    f.SetOutputSpacing(grid.spacing[::-1])
    f.SetOutputOrigin(grid.origin)
    f.SetOutputDirection(tuple(grid.direction.ravel()))
    f.SetInterpolator(sitk.sitkBSpline)
    f.SetDefaultPixelValue(fill)
    f.SetOutputPixelType(sitk.sitkFloat32)
    return sitk.GetArrayFromImage(f.Execute(image.to_sitk()))


@pytest.mark.parametrize("ndim", [2, 3])
def test_cubic_resampling_between_aligned_grids_equals_simpleitk(ndim: int) -> None:
    """A coarse PET-like image onto a finer, shifted grid that reaches beyond it on every side (the fill region
    and the mirrored ends are where an axis-by-axis B-spline could go wrong), with an oblique shared direction."""
    rng = np.random.default_rng(ndim)
    shape = (9, 11, 13)[:ndim]
    spacing = (0.4, 0.5, 0.3)[:ndim]
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])[:ndim, :ndim]
    src = Image(rng.random(shape).astype(np.float32) * 5, spacing, (1.0, -2.0, 0.5)[:ndim], rot)
    # before the first voxel on every axis; no target point exactly half a voxel beyond the last (where ITK's own
    # floating-point rounding decides inside or outside)
    origin = src.grid.index_to_world([-2.23, -0.7, -1.33][-ndim:])  # array order
    dst = Grid((41, 37, 52)[:ndim], (0.11, 0.17, 0.09)[:ndim], tuple(origin), rot)
    got = src.resample_onto(dst, order=3, fill=-7.0).array
    want = _sitk_bspline(src, dst, -7.0)
    assert (want == -7.0).any() and (want != -7.0).any()  # both regions present
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
