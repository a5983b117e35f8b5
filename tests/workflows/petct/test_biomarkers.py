"""PET biomarkers on analytic phantoms: a uniform sphere (known SUV and volume), a two-level sphere whose peak
position is known, an independent Monte-Carlo reference for the spherical mean, and the organ indices by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.workflows.petct.biomarkers import (
    IBSI_PEAK_DIAMETER_MM,
    compute_biomarkers,
    peak,
    sphere_kernel,
    sphere_means,
)


def _ball(shape: tuple[int, int, int], spacing: tuple[float, float, float], centre_mm, radius_mm: float) -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij")
    return (z - centre_mm[0]) ** 2 + (y - centre_mm[1]) ** 2 + (x - centre_mm[2]) ** 2 <= radius_mm**2


def _monte_carlo_mean(image: np.ndarray, spacing, centre_voxel, diameter_mm: float, n: int = 400_000) -> float:
    """Mean of ``image`` (nearest voxel) at points uniform in the sphere: an independent spherical mean."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(n, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    points *= (diameter_mm / 2) * rng.random(n)[:, None] ** (1 / 3)
    index = np.rint(np.asarray(centre_voxel) + points / np.asarray(spacing)).astype(int)
    return float(image[tuple(index.T)].mean())


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (3.27, 4.07, 4.07), (5.0, 2.0, 3.0)])
@pytest.mark.parametrize("diameter", [12.0, IBSI_PEAK_DIAMETER_MM])
def test_kernel_volume_is_the_sphere_volume(spacing: tuple[float, float, float], diameter: float) -> None:
    kernel = sphere_kernel(spacing, diameter)
    assert kernel.sum() * np.prod(spacing) == pytest.approx(math.pi / 6 * diameter**3, rel=2e-3)
    assert np.allclose(kernel, kernel[::-1, ::-1, ::-1])  # symmetric about the centre voxel
    assert kernel.max() == 1.0 and kernel.min() >= 0.0


def test_ibsi_sphere_is_one_millilitre() -> None:
    assert math.pi / 6 * IBSI_PEAK_DIAMETER_MM**3 == pytest.approx(1000.0)


def test_uniform_sphere_is_exact() -> None:
    spacing = (2.0, 2.0, 2.0)
    shape = (40, 40, 40)
    lesion = _ball(shape, spacing, (40.0, 40.0, 40.0), 15.0)
    suv = np.where(lesion, 5.0, 1.0)
    sul = 0.8 * suv  # a lean body mass of 80 % of the weight
    b = compute_biomarkers(suv, sul, lesion, spacing)
    assert b.lesion_count == 1 and b.suv_max == 5.0 and b.suv_mean == 5.0
    assert b.mtv_ml == pytest.approx(4 / 3 * math.pi * 1.5**3, rel=0.03)  # voxelised sphere of 1.5 cm
    assert b.mtv_ml == pytest.approx(lesion.sum() * 0.008)
    assert b.tlg == pytest.approx(b.mtv_ml * 5.0)
    # a 1.2 cm sphere fits inside the 3 cm lesion: SULpeak is the lesion's SUL exactly
    assert b.sul_peak == pytest.approx(4.0, abs=1e-9)
    assert b.pet_bone_index is None and b.pet_liver_index is None
    assert b.sul_peak_definition.startswith("study")


def test_two_level_sphere_peak_position_and_ibsi_local() -> None:
    spacing = (3.0, 2.5, 2.5)
    shape = (30, 40, 40)
    lesion = _ball(shape, spacing, (45.0, 50.0, 50.0), 22.0)
    sul = np.where(lesion, 3.0, 1.0)
    hot = _ball(shape, spacing, (45.0, 40.0, 45.0), 9.0)  # 9 mm hot core: a 12 mm sphere fits at its centre
    sul[hot] = 8.0
    spike = (15, 20, 27)  # the hottest voxel, inside the lesion but away from the hot core
    assert lesion[spike] and not hot[spike]
    sul[spike] = 12.0
    study = peak(sul, lesion, spacing, "study")
    assert study is not None
    assert study.value == pytest.approx(8.0, abs=1e-9)
    assert study.voxel == (15, 16, 18)  # the hot core's centre (45, 40, 45) mm
    local = peak(sul, lesion, spacing, "ibsi-local")
    assert local is not None and local.voxel == spike
    reference = _monte_carlo_mean(sul, spacing, spike, IBSI_PEAK_DIAMETER_MM)
    assert local.value == pytest.approx(reference, rel=0.01)
    assert local.value < study.value  # centred on the hottest voxel is not the peak


def test_spherical_mean_matches_an_independent_reference_and_handles_the_border() -> None:
    rng = np.random.default_rng(1)
    spacing = (3.27, 4.07, 4.07)
    image = rng.gamma(2.0, 1.0, size=(20, 24, 24))
    centres = np.zeros(image.shape, bool)
    centres[10, 12, 11] = centres[8, 5, 17] = True
    means = sphere_means(image, spacing, 12.0, centres)
    for value, voxel in zip(means, np.argwhere(centres), strict=True):
        assert value == pytest.approx(_monte_carlo_mean(image, spacing, voxel, 12.0), rel=0.01)
    # a constant image has that mean everywhere, corners included (the part of the sphere inside the image)
    assert np.allclose(sphere_means(np.full((6, 7, 8), 2.5), spacing, 12.0), 2.5)


def test_bone_and_liver_indices_by_hand() -> None:
    spacing = (4.0, 4.0, 4.0)  # 0.064 ml voxels
    shape = (30, 30, 30)
    bone = np.zeros(shape, bool)
    bone[2:12, 2:12, 2:12] = True  # 1000 voxels
    liver = np.zeros(shape, bool)
    liver[15:28, 15:28, 15:28] = True  # 2197 voxels
    lesions = np.zeros(shape, bool)
    lesions[8:14, 8:12, 8:12] = True  # 96 voxels, 64 in bone (≥ half): a bone lesion, all 96 count
    lesions[20:23, 20:23, 20:23] = True  # 27 voxels in the liver
    lesions[2:4, 25:27, 2:4] = True  # 8 voxels elsewhere
    suv = np.ones(shape)
    b = compute_biomarkers(suv, suv, lesions, spacing, bone=bone, liver=liver)
    assert b.lesion_count == 3
    assert sorted(lesion.site for lesion in b.lesions) == ["bone", "liver", "other"]
    assert b.bone_lesion_ml == pytest.approx(96 * 0.064) and b.bone_ml == pytest.approx(1000 * 0.064)
    assert b.pet_bone_index == pytest.approx(96 / 1000)
    assert b.pet_liver_index == pytest.approx(27 / 2197)
    assert b.mtv_ml == pytest.approx(131 * 0.064) and b.tlg == pytest.approx(131 * 0.064)


def test_empty_mask_and_bad_inputs() -> None:
    suv = np.ones((5, 5, 5))
    empty = compute_biomarkers(suv, suv, np.zeros((5, 5, 5), bool), (2, 2, 2))
    assert empty.lesion_count == 0 and empty.sul_peak is None and empty.mtv_ml == 0.0 and empty.tlg == 0.0
    with pytest.raises(InputError, match="lesion mask shape"):
        compute_biomarkers(suv, suv, np.zeros((5, 5, 4), bool), (2, 2, 2))
    with pytest.raises(InputError, match=r"bone mask shape .* resample it onto the PET grid"):
        compute_biomarkers(suv, suv, np.zeros((5, 5, 5), bool), (2, 2, 2), bone=np.zeros((4, 5, 5), bool))
    with pytest.raises(InputError, match="peak definition 'max'"):
        compute_biomarkers(suv, suv, np.ones((5, 5, 5), bool), (2, 2, 2), peak_definition="max")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="spacing"):
        compute_biomarkers(suv, suv, np.ones((5, 5, 5), bool), (2, 2))
