"""Connected components and hole filling against SciPy's implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from breastseg.masks import fill_holes, label_components, largest_component


def test_largest_component_agrees_with_scipy() -> None:
    rng = np.random.default_rng(0)
    mask = ndimage.gaussian_filter(rng.random((30, 32, 34)), 1.5) > 0.52
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    expected = labels == (np.argmax(sizes) + 1)
    np.testing.assert_array_equal(largest_component(mask), expected)
    assert label_components(mask)[1] == n


def test_connectivity_matters() -> None:
    m = np.zeros((3, 3, 3), bool)
    m[0, 0, 0] = m[1, 1, 1] = True  # touch by a corner only
    assert label_components(m, 26)[1] == 1
    assert label_components(m, 6)[1] == 2


def test_empty_mask_stays_empty() -> None:
    assert not largest_component(np.zeros((4, 4), bool)).any()


def test_fill_holes_fills_an_enclosed_cavity_only() -> None:
    shell = np.zeros((7, 7, 7), bool)
    shell[1:6, 1:6, 1:6] = True
    shell[3, 3, 3] = False
    cup = shell.copy()
    cup[3, 3, 3:] = False  # opened to the border: not a hole
    assert fill_holes(shell)[3, 3, 3]
    assert not fill_holes(cup)[3, 3, 3]


@pytest.mark.parametrize("shape", [(40, 44, 48), (120, 130)])
def test_fill_holes_equals_scipys_on_random_masks(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    for threshold in (0.45, 0.5, 0.55):  # porous masks with many holes, some reaching the border diagonally only
        mask = ndimage.gaussian_filter(rng.random(shape), 1.0) > threshold
        np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    assert fill_holes(np.ones((3, 3), bool)).all() and not fill_holes(np.zeros((3, 3), bool)).any()


def test_depth_below_surface_by_hand() -> None:
    from breastseg.masks import depth_below_surface_mm

    m = np.zeros((5, 5, 9), bool)
    m[1:4, 1:4, 1:8] = True  # a block of 3 × 3 × 7 voxels, 2 mm across in z and y, 0.5 mm along x
    depth = depth_below_surface_mm(m, (2.0, 2.0, 0.5))
    # the centre row: 2 mm of tissue (one voxel) towards z and y, so its depth is what lies along x
    np.testing.assert_allclose(depth[2, 2], [0.0, 0.0, 0.5, 1.0, 1.5, 1.0, 0.5, 0.0, 0.0])
    assert depth[1].max() == 0.0 and depth[:, 1].max() == 0.0  # the outer layers touch the outside
    assert depth[~m].max() == 0.0
    # a voxel that meets the outside only at an edge or a corner touches it: depth 0 on any grid (a centre distance
    # less one voxel would read (√2 − 1) and (√3 − 1) × 0.3 mm, 0.12 and 0.22 mm, above the 0.1 mm margin rule)
    solid = np.ones((7, 7, 7), bool)
    solid[2, 2, 2] = False  # one outside voxel inside the block (the array's border is outside too)
    d = depth_below_surface_mm(solid, (0.3, 0.3, 0.3))
    assert d[3, 3, 3] == 0.0 and d[3, 3, 2] == 0.0  # corner and edge contact
    assert d[4, 4, 4] == pytest.approx(np.sqrt(3.0) * 0.3)  # one voxel of tissue on each axis: the cubes' gap


def test_distance_to_mask_is_the_nearest_neighbour_distance_among_its_voxels() -> None:
    """Against SciPy's k-d tree over the mask's voxel centres (anisotropic spacing, several blobs)."""
    from scipy.spatial import cKDTree

    from breastseg.masks import distance_to_mask_mm

    rng = np.random.default_rng(3)
    mask = np.zeros((14, 20, 17), bool)
    for _ in range(3):
        z, y, x = rng.integers(2, 12), rng.integers(2, 18), rng.integers(2, 15)
        mask[z - 1 : z + 2, y - 2 : y + 1, x : x + 3] = True
    spacing = (0.3, 0.1, 0.2)
    got = distance_to_mask_mm(mask, spacing)
    tree = cKDTree(np.argwhere(mask) * np.asarray(spacing))
    want, _ = tree.query(np.argwhere(np.ones_like(mask)) * np.asarray(spacing))
    np.testing.assert_allclose(got.ravel(), want, rtol=1e-6, atol=1e-6)
    assert np.isinf(distance_to_mask_mm(np.zeros((3, 3, 3), bool), spacing)).all()


def test_many_2d_components_are_labelled_one_to_n_as_scipy_partitions_them() -> None:
    """A thresholded noisy map (7117 components), where cc3d's own 2D 8-connected labelling leaves gaps and splits
    components: the labels are 1..n and each is one of SciPy's components."""
    mask = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((620, 653)), 1.0) > 0.3
    labels, n = label_components(mask, 8)
    reference, m = ndimage.label(mask, structure=np.ones((3, 3)))
    assert n == m == 7117 and labels.max() == n and len(np.unique(labels)) == n + 1
    pairs = np.unique(np.stack([labels[mask], reference[mask]]), axis=1)
    assert pairs.shape[1] == n  # one-to-one: the same partition
