"""Metrics against analytic cases, peer libraries (MONAI, DeepMind surface-distance, scikit-learn) and the
specimen study's published Table 3."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import average_precision_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

import breastseg.evaluation.metrics as M
from breastseg.errors import InputError


def sphere(shape: tuple[int, ...], spacing: tuple[float, ...], radius_mm: float) -> np.ndarray:
    centre = [(n - 1) / 2 for n in shape]
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing, strict=True))
    return np.asarray(r2 <= radius_mm**2)


def irregular_pair(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.standard_normal(shape), 3)
    ref = f > 0.02
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    pred = ndimage.gaussian_filter(f + 0.3 * noise, 1) > 0.0
    return pred, ref


# --------------------------------------------------------------------------------- analytic cases
@pytest.mark.parametrize("ndim", [2, 3])
def test_concentric_spheres_have_known_hd95_and_surface_dice(ndim: int) -> None:
    spacing = (1.5, 0.6, 0.5)[-ndim:]
    shape = (50, 90, 100)[-ndim:]
    inner, outer = sphere(shape, spacing, 10.0), sphere(shape, spacing, 14.0)
    gap = 4.0
    voxel = max(spacing)
    assert M.hausdorff95(inner, outer, spacing) == pytest.approx(gap, abs=voxel)
    assert M.surface_dice(inner, outer, spacing, tolerance_mm=gap - voxel) == pytest.approx(0.0, abs=0.02)
    assert M.surface_dice(inner, outer, spacing, tolerance_mm=gap + voxel) == 1.0
    assert M.surface_metrics(inner, outer, spacing).assd_mm == pytest.approx(gap, abs=voxel)


def test_identical_masks() -> None:
    m = sphere((20, 30, 30), (1.0, 1.0, 1.0), 8.0)
    assert M.dice(m, m) == 1.0
    assert M.hausdorff95(m, m, 1.0) == 0.0
    assert M.surface_dice(m, m, 1.0, 0.0) == 1.0


def test_empty_masks_are_defined_not_nan() -> None:
    empty = np.zeros((10, 12, 14), bool)
    lesion = empty.copy()
    lesion[3:6, 4:8, 5:9] = True
    spacing = (2.0, 1.0, 0.5)
    assert M.dice(empty, empty) == 1.0
    assert M.dice(empty, lesion) == 0.0
    assert M.surface_dice(empty, empty, spacing) == 1.0
    assert M.surface_dice(empty, lesion, spacing) == 0.0
    assert M.hausdorff95(empty, empty, spacing) == 0.0
    diagonal = float(np.linalg.norm(np.array([9, 11, 13]) * np.array(spacing)))
    missed = M.surface_metrics(empty, lesion, spacing)
    assert missed.hd95_mm == pytest.approx(diagonal)
    assert not missed.hd95_defined
    assert M.surface_metrics(lesion, empty, spacing).hd95_mm == pytest.approx(diagonal)
    # a missed lesion is the worst case in a mean, never dropped
    scores = [M.hausdorff95(lesion, lesion, spacing), missed.hd95_mm]
    assert np.isfinite(np.mean(scores)) and np.mean(scores) == pytest.approx(diagonal / 2)


def test_dice_ignores_unknown_pixels() -> None:
    ref = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], bool)
    assert M.dice(pred, ref) == pytest.approx(0.5)  # 2·1 / (2 + 2)
    ignore = np.array([[0, 0, 1, 0], [0, 0, 0, 0]], bool)  # the false positive lies on an unknown pixel
    assert M.dice(pred, ref, ignore) == pytest.approx(2 / 3)  # 2·1 / (1 + 2)
    c = M.confusion(pred, ref, ignore)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 0, 1, 5)
    assert M.recall(pred, ref, ignore) == 0.5 and M.precision(pred, ref, ignore) == 1.0
    assert M.pixel_accuracy(pred, ref, ignore) == pytest.approx(6 / 7)


# --------------------------------------------------------------------------------- peers
def _monai(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...], tol: float) -> tuple[float, float]:
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    tp, tr = torch.from_numpy(pred)[None, None], torch.from_numpy(ref)[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd = float(compute_hausdorff_distance(tp, tr, include_background=True, percentile=95, spacing=spacing))
        nsd = float(compute_surface_dice(tp.float(), tr.float(), [tol], include_background=True, spacing=spacing))
    return hd, nsd


@pytest.mark.parametrize(
    ("seed", "shape", "spacing", "tol"),
    [
        (0, (40, 60, 64), (2.5, 0.9, 0.8), 1.0),
        (1, (40, 60, 64), (2.5, 0.9, 0.8), 2.5),  # exact-tolerance lattice distances (0.9·… = 2.5) are inside
        (2, (30, 50, 40), (1.0, 1.0, 1.0), 3.0),
        (3, (20, 40, 40), (0.3, 0.3, 0.3), 2.0),  # large tolerance ball: the k-d tree path
        (4, (120, 110), (0.7, 0.6), 1.0),
        (5, (120, 110), (0.1, 0.1), 1.0),  # 2D lamella at micro-CT spacing, 1 mm contour Dice
    ],
)
def test_hd95_and_surface_dice_agree_with_monai(seed: int, shape: tuple, spacing: tuple, tol: float) -> None:
    pred, ref = irregular_pair(seed, shape)
    hd_ref, nsd_ref = _monai(pred, ref, spacing, tol)
    assert M.hausdorff95(pred, ref, spacing) == pytest.approx(hd_ref, rel=1e-6, abs=1e-5)
    assert M.surface_dice(pred, ref, spacing, tol) == pytest.approx(nsd_ref, abs=1e-6)
    assert M.surface_metrics(pred, ref, spacing, tol).surface_dice == pytest.approx(nsd_ref, abs=1e-6)


def test_both_surface_dice_paths_agree() -> None:
    pred, ref = irregular_pair(7, (30, 40, 44))
    spacing = (2.0, 0.8, 0.7)
    dilation = M.surface_dice(pred, ref, spacing, 2.5)
    distances = M.surface_metrics(pred, ref, spacing, 2.5).surface_dice
    assert dilation == distances


def test_agrees_with_deepmind_surface_distance_within_its_surfel_difference() -> None:
    """DeepMind weights surface elements by area on a half-voxel-shifted grid, so values differ a little:
    HD95 within one voxel of the coarsest axis, surface Dice within 0.1."""
    sd = pytest.importorskip("surface_distance")
    for seed in range(3):
        pred, ref = irregular_pair(seed, (40, 60, 64))
        spacing = (2.5, 0.9, 0.8)
        d = sd.compute_surface_distances(ref, pred, spacing)
        assert M.hausdorff95(pred, ref, spacing) == pytest.approx(sd.compute_robust_hausdorff(d, 95), abs=2.5)
        for tol in (1.0, 2.0):
            assert M.surface_dice(pred, ref, spacing, tol) == pytest.approx(
                sd.compute_surface_dice_at_tolerance(d, tol), abs=0.1
            )


def test_pr_auc_matches_scikit_learn_including_ties_and_ignore() -> None:
    rng = np.random.default_rng(0)
    ref = rng.random((60, 70)) < 0.2
    prob = np.clip(ref * 0.3 + rng.random((60, 70)) * 0.8, 0, 1).round(2)  # rounding makes ties
    assert M.pr_auc(prob, ref) == pytest.approx(average_precision_score(ref.ravel(), prob.ravel()), abs=1e-12)
    ignore = rng.random((60, 70)) < 0.1
    expected = average_precision_score(ref[~ignore], prob[~ignore])
    assert M.pr_auc(prob, ref, ignore) == pytest.approx(expected, abs=1e-12)
    assert M.pr_auc(np.zeros((3, 3)), np.zeros((3, 3), bool)) == 1.0


def test_confusion_matrix_matches_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    ref, pred = rng.integers(0, 3, (40, 40)), rng.integers(0, 3, (40, 40))
    expected = sk_confusion_matrix(ref.ravel(), pred.ravel(), labels=[0, 1, 2])
    np.testing.assert_array_equal(M.confusion_matrix(pred, ref, 3), expected)
    with pytest.raises(InputError, match=r"0\.\.1"):
        M.confusion_matrix(pred, ref, 2)


# --------------------------------------------------------------------------------- aggregation
def test_patient_metrics_pool_slices_as_the_study_does() -> None:
    a_ref = np.zeros((20, 20), bool)
    a_ref[5:15, 5:15] = True
    a_pred = np.zeros((20, 20), bool)
    a_pred[5:15, 7:17] = True  # shifted 2 px
    b_ref = np.zeros((20, 20), bool)
    b_ref[2:6, 2:6] = True
    b_pred = np.zeros((20, 20), bool)  # missed on this slice
    spacing = (0.5, 0.5)
    out = M.patient_metrics(
        [M.SliceCase(a_pred, a_ref, spacing, prob=a_pred * 0.9), M.SliceCase(b_pred, b_ref, spacing, prob=b_pred * 0.9)]
    )
    # pooled Dice: TP 80, |P| 100, |R| 116 → 160 / 216
    assert out["dice"] == pytest.approx(160 / 216)
    assert out["hd95_slices"] == 1  # the missed slice has no defined distance
    assert out["hd95_mm"] == pytest.approx(M.hausdorff95(a_pred, a_ref, spacing))
    only_a = M.surface_metrics(a_pred, a_ref, spacing, 1.0)
    n_a = np.count_nonzero(M.surface_voxels(a_pred)) + np.count_nonzero(M.surface_voxels(a_ref))
    n_b = np.count_nonzero(M.surface_voxels(b_ref))
    assert out["surface_dice"] == pytest.approx(only_a.surface_dice * n_a / (n_a + n_b))
    assert 0 < out["pr_auc"] < 1


def test_mean_dice_per_scan_and_global_dice() -> None:
    big_ref = np.zeros((10, 10, 10), bool)
    big_ref[:, :, :5] = True  # 500 voxels
    big_pred = big_ref.copy()
    small_ref = np.zeros((10, 10, 10), bool)
    small_ref[0, 0, :2] = True  # 2 voxels, missed
    pairs = [(big_pred, big_ref), (np.zeros_like(small_ref), small_ref)]
    assert M.mean_dice(pairs) == pytest.approx(0.5)
    assert M.global_dice(pairs) == pytest.approx(1000 / 1002)


def test_lesion_detection_50_percent_rules() -> None:
    ref = np.zeros((20, 20, 20), bool)
    ref[1:5, 1:5, 1:6] = True  # lesion A, 80 voxels
    ref[10:14, 10:14, 1:6] = True  # lesion B, 80 voxels
    ref[15:18, 1:3, 1:3] = True  # lesion C, 12 voxels
    pred = np.zeros_like(ref)
    pred[1:5, 1:5, 1:4] = True  # covers 60 % of A (48 voxels), all inside the reference
    pred[10:14, 10:14, 1:3] = True  # covers 40 % of B
    pred[10:14, 10:14, 10:16] = True  # a pure false positive
    pred[1:3, 15:19, 1:3] = True  # another false positive
    result = M.lesion_detection(pred, ref, spacing=(2.0, 2.0, 2.0))
    assert (result.tp, result.fn, result.fp) == (1, 2, 2)
    assert result.recall == pytest.approx(1 / 3)
    assert result.precision == pytest.approx(1 / 3)
    assert sorted(round(r["volume_ml"], 3) for r in result.reference_lesions) == [0.096, 0.64, 0.64]


def test_one_component_over_several_lesions_is_counted_as_merged() -> None:
    ref = np.zeros((20, 20, 20), bool)
    ref[1:5, 1:5, 1:5] = True  # lesion A
    ref[1:5, 10:14, 1:5] = True  # lesion B
    ref[12:16, 12:16, 12:16] = True  # lesion C
    bridge = np.zeros_like(ref)
    bridge[1:5, 1:14, 1:5] = True  # one component over A and B (and the tissue between)
    bridge[12:16, 12:16, 12:16] = True  # C on its own
    result = M.lesion_detection(bridge, ref)
    assert (result.tp, result.fp, result.merged) == (3, 0, 1)  # the 50 % rules see nothing wrong
    holders = [r["predicted_label"] for r in result.reference_lesions]
    assert holders[0] == holders[1] != holders[2] and 0 not in holders
    separate = M.lesion_detection(ref, ref)
    assert separate.merged == 0 and separate.tp == 3
    missed = M.lesion_detection(np.zeros_like(ref), ref)
    assert missed.merged == 0 and [r["predicted_label"] for r in missed.reference_lesions] == [0, 0, 0]


def test_autopet_false_positive_and_negative_volumes() -> None:
    ref = np.zeros((20, 20, 20), bool)
    ref[1:5, 1:5, 1:5] = True  # touched by the prediction
    ref[10:12, 10:12, 10:12] = True  # untouched: 8 voxels false negative
    pred = np.zeros_like(ref)
    pred[4:8, 4:8, 4:8] = True  # touches the first lesion by one voxel: not a false positive
    pred[15:18, 15:18, 15:18] = True  # untouched: 27 voxels false positive
    fp_ml, fn_ml = M.false_positive_negative_volumes_ml(pred, ref, spacing=(2.0, 2.0, 2.0))
    assert fp_ml == pytest.approx(27 * 8 / 1000)
    assert fn_ml == pytest.approx(8 * 8 / 1000)


# --------------------------------------------------------------------------------- published numbers
def specimen_study_predictions() -> dict[str, np.ndarray]:
    """Margin statuses of the 31 NST specimens consistent with Table 3 of the specimen study.

    9 positive margins; thresholding finds all 9 and calls 9 of 22 negatives positive; the ResU-Net finds 8 of 9
    and calls 2 negatives positive (both also called positive by thresholding); the physicians' majority vote
    equals the ResU-Net (Table 4, p = 1.0000).
    """
    truth = np.array([True] * 9 + [False] * 22)
    thresh = np.array([True] * 9 + [True] * 9 + [False] * 13)
    resunet = np.array([True] * 8 + [False] + [True] * 2 + [False] * 20)
    return {"truth": truth, "thresh": thresh, "resunet": resunet, "majority": resunet.copy()}


def test_specimen_study_table_3() -> None:
    d = specimen_study_predictions()
    published = {
        "thresh": (1.00, 0.59, 0.50, 0.67),
        "resunet": (0.89, 0.91, 0.80, 0.84),
        "majority": (0.89, 0.91, 0.80, 0.84),
    }
    for method, (sens, spec, prec, f1) in published.items():
        c = M.margin_confusion(d[method], d["truth"])
        assert (round(c.sensitivity, 2), round(c.specificity, 2), round(c.precision, 2), round(c.f1, 2)) == (
            sens,
            spec,
            prec,
            f1,
        ), method


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(InputError, match="differs from reference"):
        M.dice(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(InputError, match="tolerance"):
        M.surface_dice(np.ones((3, 3)), np.ones((3, 3)), 1.0, -1.0)
