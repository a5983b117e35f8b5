"""The version-2 specimen phantom's components, each against its configuration: densities and uptakes as
configured, a biopsy track that joins tumour and surface, oil inside fat necrosis, a necrotic core, malignant
additions that respect the margin — and the version-1 specimen and tumour left as they were."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from breastseg.image import Grid
from breastseg.masks import depth_below_surface_mm
from breastseg.phantoms.specimen import (
    MALIGNANT_LABELS,
    TISSUE_LABELS,
    SpecimenPhantomConfig,
    make_specimen_phantom,
)
from breastseg.phantoms.specimen_confounders import ConfounderConfig, segment_mask

FAST = {"ct_spacing_mm": 0.3, "pet_spacing_mm": 0.6, "margin_mm": 1.5}
CONF = ConfounderConfig(biopsy_track_probability=1.0)


@pytest.fixture(scope="module")
def pair():
    v1 = make_specimen_phantom(SpecimenPhantomConfig(seed=11, **FAST))
    v2 = make_specimen_phantom(SpecimenPhantomConfig(seed=11, version=2, confounders=CONF, **FAST))
    return v1, v2


def _suv(ph) -> np.ndarray:
    pet = ph.images["pet"].resample_onto(ph.images["ct"], order=1).array
    return pet * ph.truth["pet"]["suvbw_per_bqml"]


def _interior(mask: np.ndarray, mm: float, spacing: float) -> np.ndarray:
    return ndimage.binary_erosion(mask, iterations=max(1, round(mm / spacing)))


def test_a_segment_holds_the_voxels_of_a_capped_cylinder() -> None:
    grid = Grid((80, 80, 80), (0.2, 0.2, 0.2), (0.0, 0.0, 0.0), np.eye(3))
    seg = segment_mask(grid, np.array([20.0, 40.0, 40.0]), np.array([1.0, 0.5, 0.0]), 8.0, 1.6)
    expected = (np.pi * 1.6**2 * 8.0 + 4 / 3 * np.pi * 1.6**3) / 0.2**3  # cylinder plus two half-ball caps
    assert seg.sum() == pytest.approx(expected, rel=0.04)  # 8 voxels across: the lattice undercounts by a few %
    assert seg[20, 40, 40] and not seg[20, 40, 40 + 9]  # on the axis; 1.8 mm off it


def test_version_2_keeps_the_version_1_specimen_and_tumour_and_adds_to_them(pair) -> None:
    v1, v2 = pair
    np.testing.assert_array_equal(v1.images["specimen"].array, v2.images["specimen"].array)
    t1, t2 = v1.images["tumour"].array > 0, v2.images["tumour"].array > 0
    assert np.all(t2[t1]) and t2.sum() > t1.sum()  # spicules and the DCIS extension join the tumour
    assert v2.truth["phantom_version"] == 2 and v1.truth["phantom_version"] == 1
    # the malignant additions never come closer to the surface than the requested margin
    assert v2.truth["margin_mm"] == pytest.approx(v1.truth["margin_mm"], abs=0.31)
    labels = v2.images["labels"].array
    malignant = np.isin(labels, [TISSUE_LABELS[k] for k in MALIGNANT_LABELS])
    not_wire = labels != TISSUE_LABELS["wire"]  # the wire's label covers the tumour it passes through
    assert np.array_equal(t2[not_wire], malignant[not_wire])


def test_benign_nodules_have_the_configured_density_and_uptake_and_keep_clear_of_the_tumour(pair) -> None:
    _, ph = pair
    labels, ct, suv = ph.images["labels"].array, ph.images["ct"].array, _suv(ph)
    nodules, n = ndimage.label(labels == TISSUE_LABELS["benign_nodule"])
    assert n == CONF.benign_nodules
    tumour = ph.images["tumour"].array > 0
    clearance = ndimage.distance_transform_edt(~tumour, sampling=ph.images["ct"].spacing)
    tumour_core = _interior(labels == TISSUE_LABELS["tumour"], 1.0, 0.3)
    for k in range(1, n + 1):
        nodule = nodules == k
        assert clearance[nodule].min() > 1.0  # never touching the tumour
        inside = _interior(nodule, 1.0, 0.3)  # 1 mm in: the PET's blur is gone, the CT's noise averages out
        assert np.median(ct[inside]) == pytest.approx(CONF.benign_nodule_hu, abs=8)
        mean = suv[inside].mean()
        assert abs(mean - CONF.benign_nodule_suv) < 4 * CONF.benign_nodule_suv_sd + 0.3
        # homogeneous, where the tumour is not: the spread within is noise only
        assert suv[inside].std() / mean < suv[tumour_core].std() / suv[tumour_core].mean()


def test_the_biopsy_track_joins_tumour_and_surface_with_the_configured_uptake(pair) -> None:
    _, ph = pair
    labels, suv = ph.images["labels"].array, _suv(ph)
    specimen = ph.images["specimen"].array > 0
    track = labels == TISSUE_LABELS["biopsy_track"]
    assert ph.truth["has_biopsy_track"] and track.any()
    tumour = ph.images["tumour"].array > 0
    joined, _ = ndimage.label(track | tumour)
    component = joined == joined[tuple(np.argwhere(tumour)[0])]
    depth = depth_below_surface_mm(specimen, ph.images["ct"].spacing)
    assert component[track].any() and depth[component].min() == 0.0  # tumour → track → surface
    # a 1.6 mm track at ~1 mm resolution: its axis keeps most of the configured uptake, well above the fat's
    axis = _interior(track, 0.6, 0.3)
    assert 0.5 * CONF.biopsy_track_suv < np.median(suv[axis]) < 1.2 * CONF.biopsy_track_suv
    assert np.median(suv[axis]) > 3 * np.median(suv[labels == TISSUE_LABELS["fat"]])


def test_fat_necrosis_is_oil_inside_an_avid_rim_and_the_core_of_the_tumour_is_necrotic(pair) -> None:
    _, ph = pair
    labels, ct, suv = ph.images["labels"].array, ph.images["ct"].array, _suv(ph)
    rim = labels == TISSUE_LABELS["fat_necrosis_rim"]
    assert rim.any()
    oil = ndimage.binary_fill_holes(rim) & ~rim
    assert oil.any() and np.median(ct[oil]) < -60  # fat inside (blurred towards the rim)
    assert np.median(ct[rim]) == pytest.approx(CONF.fat_necrosis_rim_hu, abs=25)
    # the PET's ~1 mm blur mixes a 0.8 mm rim with its oil, but the rim stays the brighter, well above plain fat
    assert suv[rim].mean() > suv[oil].mean() and suv[rim].mean() > 2 * np.median(suv[labels == TISSUE_LABELS["fat"]])
    core = labels == TISSUE_LABELS["necrotic_core"]
    viable = _interior(labels == TISSUE_LABELS["tumour"], 1.0, 0.3)
    assert core.any() and suv[_interior(core, 0.6, 0.3)].mean() < 0.6 * suv[viable].mean()
    assert np.median(ct[core]) == pytest.approx(CONF.necrotic_core_hu, abs=12)


def test_dcis_extension_is_malignant_but_barely_avid(pair) -> None:
    _, ph = pair
    labels, suv = ph.images["labels"].array, _suv(ph)
    dcis = labels == TISSUE_LABELS["dcis"]
    assert dcis.sum() * 0.3**3 > 0.5 * np.pi * (CONF.dcis_width_mm / 2) ** 2 * CONF.dcis_length_mm[0]
    assert (ph.images["tumour"].array > 0)[dcis].all()
    far = dcis & (ndimage.distance_transform_edt(labels != TISSUE_LABELS["tumour"], sampling=0.3) > 1.5)
    if far.any():  # away from the tumour's blurred uptake, the extension shows its own low uptake
        assert suv[far].mean() < 0.6 * suv[_interior(labels == TISSUE_LABELS["tumour"], 1.0, 0.3)].mean()


def test_version_3_widens_and_heats_only_the_biopsy_track(pair) -> None:
    _, v2 = pair
    conf3 = dataclasses.replace(ConfounderConfig.for_version(3), biopsy_track_probability=1.0)
    assert conf3.biopsy_track_diameter_mm == 3.0 and conf3.biopsy_track_suv == 5.0
    assert ConfounderConfig.for_version(3).biopsy_track_probability == 0.8
    v3 = make_specimen_phantom(SpecimenPhantomConfig(seed=11, version=3, confounders=conf3, **FAST))
    assert v3.truth["confounders"]["biopsy_track_suv"] == 5.0  # what the components took is in truth.json
    l2, l3 = v2.images["labels"].array, v3.images["labels"].array
    track2, track3 = l2 == TISSUE_LABELS["biopsy_track"], l3 == TISSUE_LABELS["biopsy_track"]
    assert np.all(track3[track2])  # the same track, wider: the other draws are version 2's
    assert np.array_equal(l2[~track3], l3[~track3])
    # a cylinder 1.5 instead of 1.0 mm in radius holds 2.25 times the voxels (the same axis, cut by the same surface)
    assert track3.sum() / track2.sum() == pytest.approx(1.5**2, rel=0.15)
    suv3 = _suv(v3)
    axis = _interior(track3, 0.9, 0.3)  # 0.6 mm round the axis: the PET's blur keeps most of the uptake
    assert 0.7 * conf3.biopsy_track_suv < np.median(suv3[axis]) < 1.1 * conf3.biopsy_track_suv
    assert np.median(suv3[axis]) > np.median(_suv(v2)[_interior(track2, 0.6, 0.3)])


def test_version_3_puts_a_track_in_four_of_five_specimens() -> None:
    from breastseg.phantoms.specimen_confounders import draw_confounders

    grid = Grid((30, 30, 30), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), np.eye(3))
    zz, yy, xx = np.indices(grid.shape)
    r = np.sqrt((zz - 14.5) ** 2 + (yy - 14.5) ** 2 + (xx - 14.5) ** 2) * 0.5
    specimen, tumour = r < 7.0, r < 2.5
    depth = depth_below_surface_mm(specimen, grid.spacing)
    only_track = dataclasses.replace(
        ConfounderConfig.for_version(3), benign_nodules=0, fat_necrosis=0, fibroglandular_bands=0, spicules=0,
        dcis_extensions=0, necrotic_core_fraction=0.0,
    )  # fmt: skip
    n = 300
    tracks = sum(
        bool(draw_confounders(grid, specimen, tumour, depth, 2.0, only_track, np.random.default_rng(s)).benign[
            "biopsy_track"][0].any())
        for s in range(n)
    )  # fmt: skip
    p = only_track.biopsy_track_probability
    assert abs(tracks - n * p) < 4 * np.sqrt(n * p * (1 - p))  # binomial: within 4 SD of 240


def test_an_unknown_version_is_refused() -> None:
    from breastseg.errors import InputError

    with pytest.raises(InputError, match="unknown specimen phantom version 4"):
        SpecimenPhantomConfig(version=4)
    # each version's components unless given: version 2's track as before, version 3's wider and hotter
    assert SpecimenPhantomConfig(version=2).confounder_config == ConfounderConfig()
    assert SpecimenPhantomConfig(version=3).confounder_config.biopsy_track_diameter_mm == 3.0
    given = ConfounderConfig(benign_nodules=1)
    assert SpecimenPhantomConfig(version=3, confounders=given).confounder_config is given
