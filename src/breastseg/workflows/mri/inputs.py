"""From a DCE exam to the network's input channels — the one definition shared by training and segmentation.

**Exam folder**: either image files — ``t1.*`` (pre-contrast), ``t1c_1.*`` … ``t1c_N.*`` (post-contrast, numbered in
acquisition order) and ``times.json`` ``{"post_times_s": [...]}`` (``truth.json`` of a phantom works too),
optionally ``t2.*`` (T2-weighted; registered onto the grid for display, not a network input) and ``tumour.nii.gz``
(a reference mask on the first T1c's grid) — or a DICOM dynamic series
(:func:`breastseg.workflows.mri.exam.read_dce_dicom`).

**Channels** ``(4, z, y, x)`` on the harmonised grid (the first T1c, upsampled ×2 in-plane when coarse):
T1c, DCE-in, DCE-out (per minute) — the study's three features (:mod:`breastseg.workflows.mri.features`) — and
the breast mask (:mod:`breastseg.workflows.mri.breast_mask`) as a spatial prior channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import read_image
from breastseg.workflows.mri.breast_mask import breast_mask
from breastseg.workflows.mri.exam import DceExam, read_dce_dicom, read_dce_files
from breastseg.workflows.mri.features import DceFeatures, dce_features
from breastseg.workflows.mri.harmonise import HarmonisedExam, Method, harmonise

CHANNELS = ("t1c", "dce_in", "dce_out_per_min", "breast")
BREAST_CHANNEL = 3
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


class BreastMode(StrEnum):
    """Where the breast mask comes from: the study's rule, or a breast network (given at each use)."""

    THRESHOLD = "threshold"
    NETWORK = "network"


@dataclass(frozen=True)
class MriPreprocessing:
    """How an exam is harmonised (stored in the model, so segmentation repeats training's steps)."""

    upsample_above_mm: float = 0.6
    registration: Method = Method.BSPLINE
    breast: BreastMode = BreastMode.THRESHOLD  # the rule, or a breast network (given at each use)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MriPreprocessing:
        return cls(float(doc["upsample_above_mm"]), doc["registration"], doc.get("breast", "threshold"))


@dataclass(eq=False)
class PreparedExam:
    """An exam ready for the network: harmonised phases, breast mask, features and the stacked channels."""

    source: str
    exam: DceExam
    harmonised: HarmonisedExam
    breast: np.ndarray
    features: DceFeatures
    channels: np.ndarray

    @property
    def grid_image(self) -> Image:
        """The first T1c on the harmonised grid (the geometry of the channels and of the network's mask)."""
        return self.harmonised.post[0]


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None


def read_exam_folder(folder: str | Path) -> DceExam:
    """A DCE exam from a folder of image files or of DICOM (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    t1 = _find(folder, "t1")
    if t1 is None:
        return read_dce_dicom(folder)
    numbered = {}
    for path in folder.iterdir():
        match = re.fullmatch(r"t1c_(\d+)(\.nii\.gz|\.nii|\.nrrd|\.mha|\.mhd)", path.name)
        if match:
            numbered[int(match.group(1))] = path
    if not numbered:
        raise InputError(f"{folder}: {t1.name} but no post-contrast t1c_1, t1c_2 … images")
    times = folder / "times.json" if (folder / "times.json").exists() else folder / "truth.json"
    if not times.exists():
        raise InputError(f"{folder}: no times.json with the post-contrast acquisition times (post_times_s)")
    return read_dce_files(t1, [numbered[k] for k in sorted(numbered)], times, _find(folder, "t2"))


def prepare_exam(
    exam: DceExam,
    preprocessing: MriPreprocessing,
    progress: Callable[[str], None] | None = None,
    breast_network: Callable[[Image], np.ndarray] | None = None,
) -> PreparedExam:
    """Harmonise (register, upsample, scale), mask the breast and compute the features of one exam.

    ``breast_network``: the breast mask function when ``preprocessing.breast`` is ``"network"`` (e.g.
    :meth:`breastseg.workflows.mri.breast_network.BreastModel.as_function`).
    """
    if preprocessing.breast == "network" and breast_network is None:
        raise InputError("this model was trained with a breast network's mask: give the breast model (--breast-model)")
    if preprocessing.breast == "threshold" and breast_network is not None:
        raise InputError(
            "this model was trained with the threshold breast mask: a breast network would change its input"
        )
    masker = breast_network or breast_mask
    h = harmonise(
        exam.t1,
        exam.post,
        exam.post_times_s,
        breast=masker,
        method=preprocessing.registration,
        upsample_above_mm=preprocessing.upsample_above_mm,
        progress=progress,
        t2=exam.t2,
    )
    breast = masker(h.t1)
    features = dce_features(h.t1.array, [p.array for p in h.post], h.post_times_s)
    channels = np.concatenate([features.stack(), breast[None].astype(np.float32)])
    return PreparedExam(exam.source, exam, h, breast, features, channels)


def reference_on_grid(mask: Image, prepared: PreparedExam, path: str | Path) -> np.ndarray:
    """A reference tumour mask, drawn on the first T1c, on the harmonised grid (nearest neighbour)."""
    first = prepared.exam.post[0]
    if mask.shape != first.shape:
        raise InputError(f"{path}: mask shape {mask.shape} differs from the first post-contrast image's {first.shape}")
    on_first = first.with_array((np.asarray(mask.array) > 0).astype(np.uint8), units="label")
    return on_first.resample_onto(prepared.grid_image, order=0).array > 0


def read_reference(folder: str | Path, prepared: PreparedExam, name: str = "tumour.nii.gz") -> np.ndarray:
    """The reference tumour mask ``folder/name`` on the prepared exam's grid."""
    path = Path(folder) / name
    if not path.exists():
        raise InputError(f"{path}: no reference tumour mask")
    return reference_on_grid(read_image(path), prepared, path)
