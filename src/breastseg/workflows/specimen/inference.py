"""3D prediction of a specimen by a bundle of 2D networks: at the networks' own pixel size, tri-planar, averaged.

A CNN learns features at the pixel size it was trained at, so the CT and PET are resampled (linear) to the
bundle's isotropic ``pixel_spacing_mm`` before the slices are cut, and the ensemble's mean probability is resampled
(linear) back onto the CT grid, where the mask and the margin are read. A 0.1 mm micro-CT predicted by a bundle
trained on 0.2 mm lamellae thus costs an eighth of the voxels and sees tissue at the scale it learnt.

:class:`VolumeInference` holds the speed options; :data:`REFERENCE` is the study's full method (every slice of
every axis, every member, float32). ``benchmarks/specimen_inference.py`` measures what the defaults change.

This module imports no torch until :func:`predict_volume` runs, so that a command can read and preprocess its
images while the network stack loads in the background (:mod:`breastseg.workflows.specimen.pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from breastseg.image import Grid, Image
from breastseg.predict.device import resolve_device, resolve_precision
from breastseg.workflows.specimen.normalisation import Normalisation

if TYPE_CHECKING:
    from breastseg.workflows.specimen.bundle import EnsembleNet

SPACING_TOLERANCE = 0.02  # relative: closer than this to the bundle's pixel size, the image grid is used as it is


@dataclass(frozen=True)
class VolumeInference:
    """How a volume is cut into slices and batched.

    Attributes:
        slice_step: run every k-th slice along each axis and interpolate the slices between (1: every slice).
        batch_size: slices per forward pass.
        precision: ``float32``; ``bfloat16`` (autocast); ``auto``: bfloat16 where the device computes it natively.
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        axes: the array axes sliced along (all three: the study's tri-planar method; one, for diagnostics).
        student: run the bundle's distilled student instead of its members when it has one and the student is
            independent of the patient (:mod:`breastseg.workflows.specimen.distil`).
        confirm_band: a student's margin status that a tumour drawn anywhere between probability 0.5 − band and
            0.5 + band would change is not taken: the members then run at the exact settings and decide
            (:func:`breastseg.workflows.specimen.margin.status_is_settled`; 0: never).
    """

    slice_step: int = 2
    batch_size: int = 32
    precision: str = "auto"
    device: str = "auto"
    axes: tuple[int, ...] = (0, 1, 2)
    student: bool = True
    confirm_band: float = 0.15

    def __post_init__(self) -> None:
        if not 0.0 <= self.confirm_band < 0.5:
            raise ValueError(f"confirm_band must lie in [0, 0.5), got {self.confirm_band}")


#: the study's exact method: every member (never the student), every slice of every axis, float32
REFERENCE = VolumeInference(slice_step=1, batch_size=16, precision="float32", student=False)


@dataclass(eq=False)
class VolumePrediction:
    """The ensemble's mean probability on the image grid, and each member's probability on the model grid.

    Attributes:
        probability: mean tumour probability in [0, 1] on the input grid (0 outside the tissue).
        member_probabilities: one array per member on ``model_grid``.
        model_grid: the grid the networks ran on (the input grid when no resampling was needed).
        model_tissue: the tissue mask on ``model_grid``.
        device, precision: where and how the networks ran (``auto`` resolved).
    """

    probability: np.ndarray
    member_probabilities: list[np.ndarray]
    model_grid: Grid
    model_tissue: np.ndarray
    device: str = "cpu"
    precision: str = "float32"


def model_grid(grid: Grid, pixel_spacing_mm: float | None) -> Grid:
    """The grid the networks run on: ``grid`` resampled to the bundle's isotropic pixel size, same field of view
    (``grid`` itself when the bundle records none or the sizes already agree within 2 %)."""
    if pixel_spacing_mm is None:
        return grid
    if np.allclose(grid.spacing, pixel_spacing_mm, rtol=SPACING_TOLERANCE, atol=0.0):
        return grid
    return grid.with_spacing(pixel_spacing_mm)


def _resampled(array: np.ndarray, src: Grid, dst: Grid, fill: float) -> np.ndarray:
    image = Image(np.asarray(array, np.float32), src.spacing, src.origin, src.direction)
    return image.resample_onto(dst, order=1, fill=fill).array


@dataclass(eq=False)
class ModelInputs:
    """A preprocessed specimen on the grid the networks run on: CT (HU), PET (SUL) and tissue, and the SUL maximum
    in the tissue that the PET channel is scaled by (taken on the input grid)."""

    grid: Grid
    ct: np.ndarray
    pet: np.ndarray
    tissue: np.ndarray
    pet_max: float

    def channels(self, normalisation: Normalisation) -> np.ndarray:
        """The network channels ``(C, z, y, x)`` of ``normalisation``."""
        return normalisation.apply(self.ct, self.pet, self.pet_max)


def model_inputs(ct: Image, pet: Image, tissue: np.ndarray, pixel_spacing_mm: float | None) -> ModelInputs:
    """CT, PET and tissue resampled (linear) to the bundle's pixel size (:func:`model_grid`); air fills the CT."""
    grid = ct.grid
    work = model_grid(grid, pixel_spacing_mm)
    pet_max = float(pet.array[tissue].max()) if tissue.any() else 0.0
    if work is grid:
        return ModelInputs(grid, ct.array, pet.array, np.asarray(tissue, bool), pet_max)
    air = float(ct.array[~tissue].min()) if (~tissue).any() else float(ct.array.min())
    return ModelInputs(
        work,
        _resampled(ct.array, grid, work, fill=air),
        _resampled(pet.array, grid, work, fill=0.0),
        _resampled(tissue, grid, work, fill=0.0) >= 0.5,
        pet_max,
    )


def predict_members(
    ensemble: Sequence[EnsembleNet],
    inputs: ModelInputs,
    inference: VolumeInference = VolumeInference(),
    progress: Callable[[str], None] | None = None,
) -> list[np.ndarray]:
    """Each member's tri-planar probability on the model grid (``inference.axes``: the axes averaged)."""
    from breastseg.predict.slices import predict_triplanar  # torch: see the module docstring

    device = resolve_device(inference.device)
    precision = resolve_precision(inference.precision, device)
    channels: dict[Normalisation, np.ndarray] = {}  # members of one search share one normalisation
    members = []
    for i, member in enumerate(ensemble):
        if progress is not None:
            progress(f"predicting (model {i + 1} of {len(ensemble)}, three axes)")
        norm = member.normalisation
        if norm not in channels:
            channels[norm] = inputs.channels(norm)
        members.append(
            predict_triplanar(
                [member.net.to(device)],
                channels[norm],
                member.size_multiple,
                batch_size=inference.batch_size,
                within=inputs.tissue,
                slice_step=inference.slice_step,
                precision=precision,
                axes=inference.axes,
            )
        )
    return members


def predict_volume(
    ensemble: Sequence[EnsembleNet],
    ct: Image,
    pet: Image,
    tissue: np.ndarray,
    pixel_spacing_mm: float | None,
    inference: VolumeInference = VolumeInference(),
    progress: Callable[[str], None] | None = None,
) -> VolumePrediction:
    """Tri-planar ensemble prediction of a preprocessed specimen.

    Args:
        ensemble: the loaded members (:meth:`~breastseg.workflows.specimen.bundle.ModelBundle.ensemble`).
        ct, pet: CT (HU) and PET (SUL) on one grid, axis order (z, y, x).
        tissue: the specimen mask on that grid; the PET is normalised to its maximum inside it.
        pixel_spacing_mm: the bundle's training pixel size (``None``: run on the input grid).
    """
    device = resolve_device(inference.device)
    precision = resolve_precision(inference.precision, device)
    grid = ct.grid
    inputs = model_inputs(ct, pet, tissue, pixel_spacing_mm)
    members = predict_members(ensemble, inputs, inference, progress)
    work = inputs.grid
    mean = np.asarray(np.mean(members, axis=0, dtype=np.float32)) if members else np.zeros(work.shape, np.float32)
    if work is not grid:
        mean = _resampled(mean, work, grid, fill=0.0)
    probability = np.where(tissue, np.clip(mean, 0.0, 1.0), 0.0).astype(np.float32)
    return VolumePrediction(probability, members, work, inputs.tissue, str(device), precision)
