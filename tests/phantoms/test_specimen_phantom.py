"""The specimen phantom: determinism, the margin it promises (checked by brute force), PET/CT realism."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from breastseg.io import read_dicom_series, read_image
from breastseg.masks import depth_below_surface_mm
from breastseg.phantoms.base import write_phantom
from breastseg.phantoms.specimen import (
    LAMELLA_LABELS,
    LAMELLA_PET_MEDIAN_MM,
    TISSUE_LABELS,
    SpecimenPhantomConfig,
    make_lamellae,
    make_specimen_phantom,
    write_lamellae,
    write_specimen_dicom,
)
from breastseg.suv import suv_scale_factor, to_suv

FAST = {
    "ct_spacing_mm": 0.4,
    "pet_spacing_mm": 0.8,
    "specimen_size_mm": (20.0, 24.0, 30.0),
    "tumour_diameter_mm": 8.0,
}


@pytest.fixture(scope="module")
def negative():
    return make_specimen_phantom(SpecimenPhantomConfig(seed=3, margin_mm=1.6, **FAST))


@pytest.fixture(scope="module")
def positive():
    return make_specimen_phantom(SpecimenPhantomConfig(seed=4, margin_mm=None, **FAST))


def brute_force_gap_mm(tumour: np.ndarray, specimen: np.ndarray, spacing: float) -> tuple[float, float]:
    """The smallest gap between a tumour voxel's cube and a cube outside the specimen, pair by pair
    (per axis ``max(0, |Δi| − 1)`` voxels), and the smallest centre distance less one voxel (how the generator
    places its tumours)."""
    inside = np.argwhere(tumour)
    tree = cKDTree(np.argwhere(~specimen).astype(float))
    centre, _ = tree.query(inside.astype(float))
    # a cube gap never exceeds the centre distance, nor falls short of it by more than √3 voxels: only pairs
    # within the shortest centre distance + √3 can hold the smallest gap
    reach = centre.min() + np.sqrt(3.0)
    outside = tree.data
    best = np.inf
    for point in inside[centre <= reach]:
        near = outside[tree.query_ball_point(point, reach)]
        gaps = np.maximum(np.abs(near - point) - 1.0, 0.0)
        best = min(best, float(np.sqrt((gaps**2).sum(axis=1)).min()))
    return best * spacing, float(centre.min() - 1.0) * spacing


def test_same_seed_same_phantom_and_other_seed_differs() -> None:
    cfg = SpecimenPhantomConfig(seed=11, **FAST)
    a, b = make_specimen_phantom(cfg), make_specimen_phantom(cfg)
    for name in a.images:
        np.testing.assert_array_equal(a.images[name].array, b.images[name].array)
    c = make_specimen_phantom(SpecimenPhantomConfig(seed=12, **FAST))
    assert not np.array_equal(a.images["tumour"].array, c.images["tumour"].array)


def test_negative_margin_is_what_was_asked(negative) -> None:
    tumour = negative.images["tumour"].array > 0
    specimen = negative.images["specimen"].array > 0
    gap, centre_gap = brute_force_gap_mm(tumour, specimen, 0.4)
    assert negative.truth["margin_mm"] == pytest.approx(gap, abs=1e-4)
    assert 1.6 - 1e-6 <= centre_gap <= 1.6 + 0.4  # placed by voxel centres, as every earlier phantom of the seed
    # the cube gap is the centre distance less up to √3 voxels on an oblique approach, one voxel along an axis
    assert centre_gap - (np.sqrt(3.0) - 1.0) * 0.4 - 1e-6 <= gap <= centre_gap + 1e-6
    assert negative.truth["margin_status"] == "negative"
    assert (tumour & ~specimen).sum() == 0


def test_a_translated_tumour_meets_its_margin_at_a_point_not_a_face() -> None:
    """Same seed, two placements: the same specimen; the clipped tumour has a broad face at the margin, the
    translated one keeps its whole blob (larger) and comes to the margin (checked by brute force) at a point."""
    cfg = SpecimenPhantomConfig(seed=3, margin_mm=1.6, **FAST)
    clipped = make_specimen_phantom(cfg)
    moved = make_specimen_phantom(dataclasses.replace(cfg, placement="translated"))
    specimen = moved.images["specimen"].array > 0
    np.testing.assert_array_equal(specimen, clipped.images["specimen"].array > 0)
    depth = depth_below_surface_mm(specimen, (0.4,) * 3)
    face = {}
    for name, ph in (("clipped", clipped), ("translated", moved)):
        tumour = ph.images["tumour"].array > 0
        gap, centre_gap = brute_force_gap_mm(tumour, specimen, 0.4)
        assert ph.truth["margin_mm"] == pytest.approx(gap, abs=1e-4)
        assert 1.6 - 1e-6 <= centre_gap <= 1.6 + 2 * 0.4, name
        face[name] = float((tumour & (depth <= gap + 0.4)).sum() * 0.4**2)  # mm² within a voxel of the minimum
    assert face["translated"] < face["clipped"] / 4, face
    assert moved.truth["tumour_volume_ml"] > clipped.truth["tumour_volume_ml"]


def test_positive_margin_touches_the_surface(positive) -> None:
    tumour = positive.images["tumour"].array > 0
    specimen = positive.images["specimen"].array > 0
    assert brute_force_gap_mm(tumour, specimen, 0.4)[0] == pytest.approx(0.0, abs=1e-6)
    assert positive.truth["margin_status"] == "positive"


def test_ct_and_pet_look_like_the_tissues(negative) -> None:
    labels = negative.images["labels"].array
    ct = negative.images["ct"].array
    assert np.median(ct[labels == TISSUE_LABELS["tumour"]]) == pytest.approx(65, abs=15)
    assert np.median(ct[labels == TISSUE_LABELS["fat"]]) == pytest.approx(-100, abs=15)
    assert np.median(ct[labels == TISSUE_LABELS["air"]]) == pytest.approx(-1000, abs=20)
    # a 0.5 mm wire on 0.4 mm voxels is partial-volumed, yet far above any tissue
    assert ct[labels == TISSUE_LABELS["wire"]].max() > 1000
    assert (labels == TISSUE_LABELS["container"]).any()
    # PET: tumour core uptake in SUVbw close to the configured 4 (the blur lowers the rim only)
    pet = negative.images["pet"]
    assert pet.units == "BQML"
    factor = negative.truth["pet"]["suvbw_per_bqml"]
    core = labels == TISSUE_LABELS["tumour"]
    from scipy import ndimage

    core = ndimage.binary_erosion(core, iterations=4)
    pet_on_ct = pet.resample_onto(negative.images["ct"], order=1).array * factor
    assert np.median(pet_on_ct[core]) == pytest.approx(4.0, rel=0.2)
    background = labels == TISSUE_LABELS["fat"]
    assert np.median(pet_on_ct[background]) < 1.0


def test_pet_and_ct_cover_the_same_field_of_view(negative) -> None:
    ct, pet = negative.images["ct"].grid, negative.images["pet"].grid
    np.testing.assert_allclose(pet.physical_size_mm, ct.physical_size_mm, atol=pet.spacing[0])
    ct_edge = np.asarray(ct.origin) - np.asarray(ct.spacing) / 2
    pet_edge = np.asarray(pet.origin) - np.asarray(pet.spacing) / 2
    np.testing.assert_allclose(pet_edge, ct_edge, atol=1e-6)


def test_written_phantom_reads_back(tmp_path: Path, negative) -> None:
    written = write_phantom(negative, tmp_path)
    truth = json.loads(written["truth"].read_text())
    assert truth["files"]["ct"] == "ct.nii.gz"
    assert truth["config"]["seed"] == 3
    ct = read_image(tmp_path / "ct.nii.gz")
    assert ct.grid.same_as(negative.images["ct"].grid)
    tumour = read_image(tmp_path / "tumour.nii.gz").array > 0
    assert tumour.sum() * ct.voxel_volume_ml == pytest.approx(truth["tumour_volume_ml"], rel=1e-6)  # NIfTI: float32


def test_dicom_export_gives_the_truth_suv(tmp_path: Path, negative) -> None:
    paths = write_specimen_dicom(negative, tmp_path)
    series = read_dicom_series(paths["pet"])
    info = series.pet_info()
    assert suv_scale_factor(info, "bw") == pytest.approx(negative.truth["pet"]["suvbw_per_bqml"], rel=1e-5)
    assert suv_scale_factor(info, "lbm") == pytest.approx(negative.truth["pet"]["sul_per_bqml"], rel=1e-5)
    suv = to_suv(series.image, info, "bw")
    expected = negative.images["pet"].array * negative.truth["pet"]["suvbw_per_bqml"]
    assert np.max(np.abs(suv.array - expected)) < 1e-3 * expected.max()
    ct = read_dicom_series(paths["ct"]).image
    assert ct.grid.same_as(negative.images["ct"].grid)


def test_lamellae(tmp_path: Path, negative) -> None:
    lams = make_lamellae(negative, n=3, thickness_mm=2.4)
    assert len(lams) == 3
    assert np.diff([lam.z_mm for lam in lams]) == pytest.approx([2.4, 2.4], abs=0.41)
    for lam in lams:
        values = set(np.unique(lam.label.array).tolist())
        assert values == set(LAMELLA_LABELS.values())
        tissue = lam.ct.array > -500
        unknown = lam.label.array == LAMELLA_LABELS["unknown"]
        assert 0.05 < unknown.sum() / tissue.sum() < 0.15
        assert lam.ct.shape == lam.pet.shape == lam.label.shape
    manifest = write_lamellae(lams, tmp_path, patient_id="p1")
    rows = list(csv.DictReader(manifest.open()))
    assert [r["slice_id"] for r in rows] == ["p1_L00", "p1_L01", "p1_L02"]
    label = read_image(tmp_path / rows[0]["label"])
    np.testing.assert_array_equal(label.array, lams[0].label.array)


def test_lamellae_carry_the_pipelines_pet_median_filter(negative) -> None:
    """The lamellae's PET is the specimen pipeline's (its median kernel, in 3D, then cubic onto the CT): the
    median of SciPy on the PET grid, resampled and sliced, equals the lamella's; 0 mm leaves the raw PET."""
    from scipy import ndimage

    from breastseg.workflows.specimen.preprocess import PreprocessConfig

    assert PreprocessConfig().median_kernel_mm == LAMELLA_PET_MEDIAN_MM
    pet = negative.images["pet"]
    size = max(1, round(LAMELLA_PET_MEDIAN_MM / pet.spacing[0]))
    size += 1 - size % 2
    reference = pet.with_array(ndimage.median_filter(pet.array, size=size, mode="nearest"))
    ct = negative.images["ct"]
    filtered, raw = (make_lamellae(negative, n=1, cut_edge=False, pet_median_mm=k)[0] for k in (2.0, 0.0))
    k = round(ct.grid.world_to_index([0.0, 0.0, filtered.z_mm])[0])
    np.testing.assert_allclose(filtered.pet.array, reference.resample_onto(ct, order=3).array[k], atol=1e-3)
    np.testing.assert_allclose(raw.pet.array, pet.resample_onto(ct, order=3).array[k], atol=1e-3)
    tissue = filtered.label.array != LAMELLA_LABELS["unknown"]
    assert np.abs(filtered.pet.array - raw.pet.array)[tissue].mean() > 0.05 * raw.pet.array[tissue].mean()


def test_the_unknown_band_around_the_tumour_follows_its_option(negative) -> None:
    from scipy import ndimage

    def ring_unknown(band_mm: float) -> float:
        """Share of the pixels just outside the tumour that are labelled unknown."""
        shares = []
        for lam in make_lamellae(negative, n=3, thickness_mm=2.4, unknown_band_mm=band_mm, seed=1):
            label = lam.label.array
            tumour = label == LAMELLA_LABELS["malignant"]
            ring = ndimage.binary_dilation(tumour) & ~tumour & (lam.ct.array > -500)
            if ring.any():
                shares.append(float(np.mean(label[ring] == LAMELLA_LABELS["unknown"])))
        return float(np.mean(shares))

    assert ring_unknown(0.3) == 1.0  # the whole ring is the band
    assert ring_unknown(0.0) < 0.6  # only the random patches (10 % of the tissue, smooth) remain


def test_bread_loafing_cuts_the_whole_specimen_at_the_lamella_thickness(negative) -> None:
    lams = make_lamellae(negative, thickness_mm=2.4, span="specimen", seed=2)
    specimen = negative.images["specimen"].array > 0
    tumour = negative.images["tumour"].array > 0
    dz = negative.images["ct"].spacing[0]
    rows = np.flatnonzero(specimen.any(axis=(1, 2)))
    z = np.array([lam.z_mm for lam in lams])
    # one slice every 2.4 mm (to within a voxel) from one end of the specimen to the other
    assert np.diff(z) == pytest.approx(np.full(len(z) - 1, 2.4), abs=dz)
    assert len(lams) >= int((rows[-1] - rows[0]) * dz / 2.4) - 1
    # tumour-free lamellae are among them, and every malignant pixel is the tumour's
    malignant = [int(np.count_nonzero(lam.label.array == LAMELLA_LABELS["malignant"])) for lam in lams]
    tumour_rows = np.flatnonzero(tumour.any(axis=(1, 2)))
    k = [round(negative.images["ct"].grid.world_to_index([0.0, 0.0, v])[0]) for v in z]
    expected_free = [not (tumour_rows[0] <= i <= tumour_rows[-1]) for i in k]
    assert any(expected_free) and all(m == 0 for m, free in zip(malignant, expected_free, strict=True) if free)
    assert sum(m > 0 for m in malignant) >= 2
    # the default still cuts n slices through the tumour, as before
    assert all((lam.label.array == LAMELLA_LABELS["malignant"]).any() for lam in make_lamellae(negative, n=3))
