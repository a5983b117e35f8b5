"""Specimen preprocessing steps against the phantom's truth, and the bad inputs they refuse."""

from __future__ import annotations

import numpy as np
import pytest

from breastseg.errors import InputError
from breastseg.evaluation.metrics import dice
from breastseg.image import Image, odd_kernel
from breastseg.phantoms.base import Phantom
from breastseg.phantoms.specimen import TISSUE_LABELS
from breastseg.workflows.specimen import preprocess as P
from tests.workflows.specimen.conftest import phantom_pet_info


def test_all_steps_recover_the_specimen(negative_phantom: Phantom) -> None:
    ph = negative_phantom
    pair = P.preprocess(ph.images["ct"], ph.images["pet"], phantom_pet_info(ph))
    labels = ph.images["labels"].array[pair.crop]
    truth = ph.images["specimen"].array[pair.crop] > 0
    assert dice(pair.tissue, truth) > 0.99
    # the bed is gone, the wire outside the tissue too, but not the tissue
    container_truth = ph.images["labels"].array == TISSUE_LABELS["container"]
    assert pair.container[container_truth].mean() > 0.95
    assert pair.container[ph.images["specimen"].array > 0].mean() < 0.01
    n_bed = (labels == TISSUE_LABELS["container"]).sum()
    print("bed voxels left in tissue", (pair.tissue & (labels == TISSUE_LABELS["container"])).sum(), n_bed)
    assert (pair.tissue & (labels == TISSUE_LABELS["container"])).sum() < 0.02 * n_bed
    # background removed, PET in SUL and on the CT grid
    assert np.all(pair.ct.array[~pair.tissue] == P.AIR_HU)
    assert np.all(pair.pet.array[~pair.tissue] == 0)
    assert pair.pet.units == "SUL" and pair.pet.grid.same_as(pair.ct.grid)
    sul_core = np.median(pair.pet.array[labels == TISSUE_LABELS["tumour"]])
    expected = (
        ph.truth["pet"]["tumour_suvbw"] * ph.truth["pet"]["lean_body_mass_kg"] / ph.truth["pet"]["patient_weight_kg"]
    )
    assert sul_core == pytest.approx(expected, rel=0.2)
    assert list(pair.timings_s) == [
        "pet_to_sul",
        "median_filter",
        "remove_container",
        "tissue_mask",
        "resample_pet",  # onto the cropped grid: after the tissue mask, which reads the CT alone
        "remove_background",
        "crop",
    ]
    # the study's order (PET onto the whole CT grid, then background removal and crop) gives the same PET
    sul = P.median_filter_pet(P.pet_to_sul(ph.images["pet"], phantom_pet_info(ph)))
    whole = P.resample_pet_to_ct(sul, ph.images["ct"])
    study = np.where(pair.tissue, whole.array[pair.crop], 0.0)
    np.testing.assert_allclose(pair.pet.array, study, rtol=1e-5, atol=1e-5)


def test_median_kernel_is_2_mm() -> None:
    assert odd_kernel(2.0, (0.4, 0.4, 0.4)) == (5, 5, 5)
    assert odd_kernel(2.0, (0.5, 1.0, 2.0)) == (5, 3, 1)
    spike = np.zeros((9, 9, 9), np.float32)
    spike[4, 4, 4] = 100.0
    assert P.median_filter_pet(Image(spike, (0.4, 0.4, 0.4)), 2.0).array.max() == 0.0


def test_median_filter_equals_scipys_on_an_anisotropic_grid() -> None:
    from scipy import ndimage

    values = np.random.default_rng(3).gamma(2.0, 1.0, size=(17, 23, 29)).astype(np.float32)
    spacing = (0.5, 0.4, 0.25)  # kernel (5, 5, 9): the axes must not be swapped
    got = P.median_filter_pet(Image(values, spacing), 2.0).array
    expected = ndimage.median_filter(values, size=odd_kernel(2.0, spacing), mode="nearest")
    np.testing.assert_array_equal(got, expected)


def test_working_spacing_is_used(negative_phantom: Phantom) -> None:
    ph = negative_phantom
    pair = P.preprocess(
        ph.images["ct"], ph.images["pet"], phantom_pet_info(ph), config=P.PreprocessConfig(working_spacing_mm=0.4)
    )
    assert pair.ct.spacing == pytest.approx((0.4, 0.4, 0.4))
    assert "ct_to_working_grid" in pair.timings_s


def test_bad_inputs(negative_phantom: Phantom) -> None:
    ct, pet = negative_phantom.images["ct"], negative_phantom.images["pet"]
    with pytest.raises(InputError, match="must be 3D"):
        P.preprocess(Image(ct.array[10], ct.spacing[1:]), pet)
    with pytest.raises(InputError, match="Hounsfield"):
        P.preprocess(ct.with_array(ct.array + 1024.0 + 100.0), pet)
    shifted = Image(pet.array, pet.spacing, origin=tuple(np.asarray(pet.origin) + 100.0), units="BQML")
    with pytest.raises(InputError, match="fields of view overlap"):
        P.preprocess(ct, shifted)
    with pytest.raises(InputError, match="no tissue"):
        P.tissue_mask(ct.with_array(np.full(ct.shape, -1000.0, np.float32)))
    with pytest.raises(InputError, match="PET units are unknown"):
        P.preprocess(ct, Image(pet.array, pet.spacing, pet.origin))
    with pytest.raises(InputError, match="needs patient weight"):
        P.preprocess(ct, pet, None)
