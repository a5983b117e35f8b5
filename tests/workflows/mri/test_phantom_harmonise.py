"""The DCE phantom's kinetics through the features, the breast mask, and deformable registration recovering a
known deformation to sub-voxel mean error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from breastseg.evaluation.metrics import dice
from breastseg.image import Image
from breastseg.phantoms.dce import DcePhantomConfig, make_dce_phantom
from breastseg.phantoms.shapes import smooth_field
from breastseg.registration import register_bspline
from breastseg.workflows.mri.breast_mask import breast_mask
from breastseg.workflows.mri.features import dce_features
from breastseg.workflows.mri.harmonise import harmonise, upsample_in_plane

SMALL = DcePhantomConfig(seed=2, shape=(16, 64, 72), spacing_mm=(3.0, 1.5, 1.5))


def test_phantom_kinetics_come_out_of_the_features_exactly() -> None:
    p = make_dce_phantom(DcePhantomConfig(seed=1, shape=(16, 64, 72), noise_sd=0.0, motion_mm=0.0, motion_deg=0.0))
    s0 = p.images["t1"].array
    post = [p.images[f"t1c_{k}"].array for k in range(1, 6)]
    feats = dce_features(s0, post, p.truth["post_times_s"])
    for tissue in ("tumour", "benign"):
        region = p.images[tissue].array > 0
        kin = p.truth["kinetics"][tissue]
        np.testing.assert_allclose(feats.dce_out_per_min[region] / s0[region], kin["slope_per_min"], atol=1e-5)
        np.testing.assert_allclose(feats.dce_in[region] / s0[region], kin["dce_in"], atol=1e-5)
    assert p.truth["kinetics"]["tumour"]["slope_per_min"] < 0 < p.truth["kinetics"]["benign"]["slope_per_min"]


def test_breast_mask_finds_the_breast_in_front_of_the_chest_wall() -> None:
    p = make_dce_phantom(SMALL)
    mask = breast_mask(p.images["t1c_1"])
    truth = p.images["breast"].array > 0
    assert dice(mask, truth) > 0.95
    ny = truth.shape[1]
    assert not mask[:, int(0.9 * ny) :].any()  # nothing of the pectoral muscle behind the wall


def test_bspline_registration_recovers_a_known_deformation() -> None:
    p = make_dce_phantom(
        DcePhantomConfig(seed=2, shape=(16, 64, 72), spacing_mm=(3.0, 1.5, 1.5), motion_mm=0.0, motion_deg=0.0)
    )
    fixed = p.images["t1c_1"]
    grid = fixed.grid
    rng = np.random.default_rng(5)
    disp_mm = np.stack([3.0 * w * smooth_field(grid, 50.0, rng) for w in (0.3, 1.0, 1.0)])  # (z, y, x) mm
    coords = np.indices(grid.shape, dtype=np.float32) + disp_mm / np.reshape(grid.spacing, (3, 1, 1, 1))
    # the moving image shows at voxel v what the second phase shows at v + d(v)
    moving = fixed.with_array(ndimage.map_coordinates(p.images["t1c_2"].array, coords, order=1, mode="nearest"))
    reg = register_bspline(fixed, moving)
    breast = p.images["breast"].array > 0
    errors = []
    for v in np.argwhere(breast)[::40]:
        mapped = np.asarray(reg.transform.TransformPoint(tuple(float(c) for c in grid.index_to_world(v))))
        truth = grid.index_to_world(v - disp_mm[:, v[0], v[1], v[2]] / np.asarray(grid.spacing))
        errors.append(np.linalg.norm(mapped - truth))
    magnitude = np.linalg.norm(disp_mm, axis=0)[breast].mean()
    assert magnitude > 2.0 and np.mean(errors) < 1.0 < min(grid.spacing)  # sub-voxel, from a ~3 mm deformation


def test_harmonise_scales_by_the_breast_t1_and_upsamples_coarse_scans() -> None:
    p = make_dce_phantom(SMALL)
    post = [p.images[f"t1c_{k}"] for k in range(1, 4)]
    exam = harmonise(
        p.images["t1"], post, p.truth["post_times_s"][:3], breast_mask, method="rigid", upsample_above_mm=1.0
    )
    assert exam.upsampled and exam.t1.spacing == pytest.approx((3.0, 0.75, 0.75))
    assert exam.t1.shape == (16, 128, 144) and all(im.grid.same_as(exam.t1.grid) for im in exam.post)
    mask = breast_mask(exam.t1)
    assert np.percentile(exam.t1.array[mask], 95) == pytest.approx(1.0, abs=0.02)
    assert upsample_in_plane(p.images["t1"]).shape == (16, 128, 144)


def test_a_t2_with_other_contrast_and_a_shift_is_registered_and_scaled_on_its_own() -> None:
    p = make_dce_phantom(DcePhantomConfig(seed=3, shape=(16, 64, 72), spacing_mm=(3.0, 1.5, 1.5), motion_mm=0.0))
    t1c = p.images["t1c_1"]
    body = t1c.array > 0.1 * np.percentile(t1c.array, 99)
    # another contrast: in the body, bright where T1c is dark (reciprocal); air stays dark
    contrast = np.where(body, 1e5 / np.maximum(t1c.array, 1.0), 0.0).astype(np.float32)
    shift_mm = np.array([4.5, -3.0, 0.0])  # LPS x, y, z: the T2 lies 4.5 mm left and 3 mm anterior
    t2 = Image(contrast, t1c.spacing, tuple(np.asarray(t1c.origin) + shift_mm), t1c.direction)
    post, times = [t1c, p.images["t1c_2"]], p.truth["post_times_s"][:2]
    breast = p.images["breast"].array > 0
    residual = {}
    for method in ("rigid", "none"):
        exam = harmonise(p.images["t1"], post, times, breast, method=method, upsample_above_mm=2.0, t2=t2)
        assert exam.t2 is not None and exam.t2.grid.same_as(t1c.grid)
        assert np.percentile(exam.t2.array[breast], 95) == pytest.approx(1.0, abs=1e-6)  # its own scale
        # the shift left between the registered T2 and the unshifted contrast, by scikit-image (voxels z, y, x)
        residual[method] = phase_cross_correlation(contrast, exam.t2.array, upsample_factor=10)[0]
    np.testing.assert_allclose(np.abs(residual["none"]), [0.0, 2.0, 3.0], atol=0.3)  # 3 mm / 1.5, 4.5 mm / 1.5
    assert np.abs(residual["rigid"]).max() < 0.3  # sub-voxel
