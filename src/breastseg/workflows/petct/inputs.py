"""Network inputs of the PET/CT lesion networks: scan folders → channels on the PET grid → the model's grid.

**Channels** (Moreau et al. 2022), all on the PET grid of the scan being segmented:

* baseline network — ``pet`` SUVbw clipped to [0, 5], ``ct`` HU resampled (linear) onto the PET grid;
* follow-up network — also ``baseline_pet`` (SUVbw, [0, 5]) and ``baseline_mask``, the baseline scan rigidly
  registered onto the follow-up PET (Mattes mutual information, :func:`breastseg.registration.register_rigid`),
  the mask resampled nearest-neighbour.

The same channels feed the nnU-Net bridge (:mod:`breastseg.workflows.petct.nnunet`) and breastseg's own DynUNet.

**Preprocessing** (nnU-Net's, fitted on the training scans and stored with the model, :class:`Preprocessing`):
resampling to the median PET spacing of the training scans (linear; masks nearest); PET channels kept as SUV in
[0, 5] (nnU-Net "noNorm"); CT clipped to the 0.5–99.5th percentiles of the training lesions' HU and z-scored
with their mean and SD (nnU-Net's "CT" normalisation, which collects its statistics from the labelled voxels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.errors import InputError, ModelError
from breastseg.image import Grid, Image
from breastseg.io import read_image
from breastseg.registration import register_rigid
from breastseg.workflows.petct.longitudinal import first_existing, lesion_mask_path, read_scan_pet
from breastseg.workflows.petct.readout import read_mask_on


class Kind(StrEnum):
    """Which network a scan feeds (``--kind``): the baseline one (PET + CT) or the follow-up one (+ the registered
    baseline PET and its lesion mask)."""

    BASELINE = "baseline"
    FOLLOWUP = "followup"


SUV_CLIP = (0.0, 5.0)
BODY_HU = -500.0
CHANNELS: dict[str, tuple[str, ...]] = {
    "baseline": ("pet", "ct"),
    "followup": ("pet", "ct", "baseline_pet", "baseline_mask"),
}
DESCRIPTIONS = {
    "pet": "PET SUVbw clipped to [0, 5]",
    "ct": "CT (HU) on the PET grid",
    "baseline_pet": "baseline PET SUVbw, registered (rigid MI)",
    "baseline_mask": "baseline lesion mask, registered (nearest)",
}
#: the CT's names in a scan folder
#: a scan folder's CT; autoPET gives it resampled onto the PET (CTres) and at its own resolution (CT)
CT_NAMES = ("ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha", "ct", "CTres.nii.gz", "CT.nii.gz")


@dataclass(eq=False)
class ScanChannels:
    """One scan's network channels on its PET grid (``images`` in :data:`CHANNELS` order), its lesion mask when
    known, the body (CT above −500 HU), where training patches are centred, and the PET in SUVbw unclipped (what
    the post-processing measures uptake on)."""

    folder: Path
    names: tuple[str, ...]
    images: list[Image]
    lesions: np.ndarray | None
    body: np.ndarray
    suv: np.ndarray

    @property
    def grid(self) -> Grid:
        return self.images[0].grid


def ct_path(folder: Path) -> Path:
    """The CT of a scan folder (``ct.nii.gz`` … or a ``ct/`` DICOM folder)."""
    found = first_existing(folder, CT_NAMES)
    if found is None:
        raise InputError(f"{folder}: no CT ({', '.join(CT_NAMES)})")
    return found


def _clipped_suv(folder: Path, pet_units: str | None = None) -> tuple[Image, np.ndarray]:
    """The PET channel (SUVbw clipped to :data:`SUV_CLIP`) and the SUVbw array itself."""
    suv, _ = read_scan_pet(folder, pet_units)
    return suv.with_array(np.clip(suv.array, *SUV_CLIP).astype(np.float32)), suv.array


def read_channels(
    folder: str | Path,
    kind: Kind = Kind.BASELINE,
    mask_name: str | None = "lesions.nii.gz",
    baseline: str | Path | None = None,
    baseline_mask_name: str = "lesions.nii.gz",
    pet_units: str | None = None,
) -> ScanChannels:
    """The channels of the scan in ``folder`` (see the module docstring).

    Args:
        mask_name: the lesion mask to read as the training label (``None``: none, for prediction; a name that
            is not in the folder is an error).
        baseline: for ``kind="followup"``, the patient's baseline scan folder, whose PET and
            ``baseline_mask_name`` mask (a reference or a baseline network's prediction) are registered in.
        pet_units: what an image PET's values are (``BQML``, ``SUVbw``, ``SUL``; any case), for every PET read
            (:func:`~breastseg.workflows.petct.longitudinal.load_scan_pet`: else from its name or PET info).
    """
    folder = Path(folder)
    if kind not in CHANNELS:
        raise InputError(f"network kind must be baseline or followup, got {kind!r}")
    suv, suv_bw = _clipped_suv(folder, pet_units)
    ct = read_image(ct_path(folder), modality="CT").resample_onto(suv, order=1, fill=-1000.0)
    images = [suv, ct.with_array(ct.array.astype(np.float32))]
    if kind == "followup":
        if baseline is None:
            raise InputError(f"{folder}: the follow-up network needs the patient's baseline scan folder")
        base = Path(baseline)
        base_suv, _ = _clipped_suv(base, pet_units)
        base_mask = read_mask_on(base / baseline_mask_name, base_suv, "baseline lesion mask")
        registration = register_rigid(suv, base_suv)
        images.append(registration.warp(base_suv, suv, order=1))
        images.append(registration.warp(base_suv.with_array(base_mask.astype(np.float32)), suv, order=0))
    lesions = None
    if mask_name is not None:
        lesions = read_mask_on(lesion_mask_path(folder, mask_name), suv, "lesion mask")
    return ScanChannels(folder, CHANNELS[kind], images, lesions, ct.array > BODY_HU, suv_bw)


@dataclass(frozen=True)
class Preprocessing:
    """How a scan's channels become the network's input (see the module docstring); stored with every model.

    Attributes:
        kind: baseline (2 channels) or followup (4).
        spacing_mm: the grid the network runs on, ``(z, y, x)`` mm (median training PET spacing).
        ct_clip_hu: CT clipping limits, HU.
        ct_mean_hu, ct_sd_hu: the z-score of the clipped CT.
    """

    kind: Kind
    spacing_mm: tuple[float, float, float]
    ct_clip_hu: tuple[float, float]
    ct_mean_hu: float
    ct_sd_hu: float

    @property
    def channels(self) -> tuple[str, ...]:
        return CHANNELS[self.kind]

    @property
    def mask_channels(self) -> tuple[int, ...]:
        return tuple(i for i, name in enumerate(self.channels) if name.endswith("_mask"))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Preprocessing:
        try:
            return cls(
                doc["kind"],
                _three(doc["spacing_mm"]),
                (float(doc["ct_clip_hu"][0]), float(doc["ct_clip_hu"][1])),
                float(doc["ct_mean_hu"]),
                float(doc["ct_sd_hu"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model preprocessing: missing or bad field ({exc})") from exc

    def model_grid(self, grid: Grid) -> Grid:
        """The network's grid over ``grid``'s field of view (``grid`` itself when the spacings agree within 2 %)."""
        if np.allclose(grid.spacing, self.spacing_mm, rtol=0.02, atol=0.0):
            return grid
        return grid.with_spacing(self.spacing_mm)

    def network_input(self, scan: ScanChannels) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, Grid]:
        """``(channels (C, z, y, x) float32, label or None, body, grid)`` on the network's grid."""
        if scan.names != self.channels:
            raise InputError(f"{scan.folder}: channels {scan.names} do not match the model's {self.channels}")
        grid = self.model_grid(scan.grid)
        out = []
        for name, image in zip(scan.names, scan.images, strict=True):
            fill = -1000.0 if name == "ct" else 0.0
            if grid is scan.grid:
                array = image.array
            else:
                array = image.resample_onto(grid, order=0 if name.endswith("_mask") else 1, fill=fill).array
            if name == "ct":
                lo, hi = self.ct_clip_hu
                array = (np.clip(array, lo, hi) - self.ct_mean_hu) / self.ct_sd_hu
            out.append(np.asarray(array, np.float32))
        label = None if scan.lesions is None else _on(scan, scan.lesions, grid) > 0
        body = _on(scan, scan.body, grid) > 0
        return np.stack(out), label, body, grid


def _on(scan: ScanChannels, mask: np.ndarray, grid: Grid) -> np.ndarray:
    if grid is scan.grid:
        return mask
    return scan.images[0].with_array(mask.astype(np.uint8)).resample_onto(grid, order=0).array


def fit_preprocessing(scans: Sequence[ScanChannels], kind: Kind) -> Preprocessing:
    """nnU-Net's fingerprint of the training scans: median spacing; CT percentiles, mean and SD over the lesion
    voxels (over the body when no scan has a lesion)."""
    if not scans:
        raise InputError("no training scans to fit the preprocessing on")
    spacing = _three(np.median([s.grid.spacing for s in scans], axis=0))
    ct_index = CHANNELS[kind].index("ct")
    values = [s.images[ct_index].array[s.lesions] for s in scans if s.lesions is not None and s.lesions.any()]
    if not values:
        values = [s.images[ct_index].array[s.body] for s in scans]
    hu = np.concatenate(values).astype(np.float64)
    if hu.size == 0:
        raise InputError("the training scans hold no lesion or body voxels to fit the CT normalisation on")
    lo, hi = (float(v) for v in np.percentile(hu, [0.5, 99.5]))
    clipped = np.clip(hu, lo, hi)
    sd = float(clipped.std())
    return Preprocessing(kind, spacing, (lo, hi), float(clipped.mean()), sd if sd > 0 else 1.0)


def _three(values: Any) -> tuple[float, float, float]:
    """Three numbers (a spacing in mm, array order) as floats."""
    z, y, x = (float(v) for v in values)
    return z, y, x
