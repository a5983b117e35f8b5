"""Reading a DCE exam: the pre-contrast T1 and the post-contrast T1c phases with their acquisition times, from a
DICOM dynamic series or from image files with the times given; and the split into single breasts.

**DICOM**: one dynamic series whose phases share slice positions (:func:`breastseg.io.dicom.read_dicom_phases`
orders them by TemporalPositionIdentifier / AcquisitionNumber / time); the first phase is the pre-contrast T1,
the others the post-contrast phases, timed from the headers (seconds after the pre-contrast phase's start).

**Files** (NIfTI, NRRD, MHA): ``t1`` and ``post`` paths plus the times — a list, or a JSON file
``{"post_times_s": [...]}`` (seconds from any common origin) — and optionally a T2-weighted image.

**Laterality**: the breasts are cut apart at the middle of the body along the patient's left–right axis (found
from the image direction: LPS +x is the patient's left); each half keeps its physical geometry (origin moved).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import read_image
from breastseg.io.dicom import DicomSeries, read_dicom_phases
from breastseg.sanity import check_image


@dataclass(eq=False)
class DceExam:
    """Pre-contrast ``t1``, post-contrast ``post`` phases at ``post_times_s`` (s), and an optional T2-weighted
    image (read for reference and display; the study found adding it as a network input lowered the Dice).
    ``first_post_dicom``: read from DICOM, the first post-contrast phase's headers and files — the source images
    the tumour's SEG and SR reference."""

    t1: Image
    post: list[Image]
    post_times_s: list[float]
    source: str
    t2: Image | None = None
    first_post_dicom: DicomSeries | None = None


def read_dce_dicom(folder: str | Path, series_uid: str | None = None) -> DceExam:
    """A DCE exam from a DICOM dynamic series (see the module docstring)."""
    phases = read_dicom_phases(folder, series_uid)
    if len(phases) < 2:
        raise InputError(
            f"{folder}: a DCE exam needs a pre-contrast and at least one post-contrast phase, found {len(phases)}"
        )
    times = [float(t) for p, _ in phases if (t := p.seconds_from_first) is not None]
    if len(times) != len(phases):
        raise InputError(f"{folder}: phase acquisition times are missing (AcquisitionDate/AcquisitionTime)")
    images = [s.image for _, s in phases]
    for k, image in enumerate(images):
        check_image(image, f"{folder}, phase {k}")
    return DceExam(images[0], images[1:], times[1:], str(folder), first_post_dicom=phases[1][1])


def read_times(times: Sequence[float] | str | Path) -> list[float]:
    """Post-contrast times (s) from a list or a JSON file with ``post_times_s``."""
    if isinstance(times, str | Path):
        path = Path(times)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return [float(t) for t in doc["post_times_s"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: not a JSON file with a post_times_s list ({exc})") from exc
    return [float(t) for t in times]


def read_dce_files(
    t1: str | Path, post: Sequence[str | Path], times: Sequence[float] | str | Path, t2: str | Path | None = None
) -> DceExam:
    """A DCE exam from image files and the post-contrast acquisition times (see the module docstring); ``t2``
    optional."""
    post_times = read_times(times)
    if len(post_times) != len(post):
        raise InputError(f"{len(post)} post-contrast images but {len(post_times)} acquisition times")
    if any(b <= a for a, b in itertools.pairwise(post_times)):
        raise InputError(f"post-contrast times must increase, got {post_times}")
    return DceExam(
        _read_checked(t1),
        [_read_checked(p) for p in post],
        post_times,
        str(Path(t1).parent),
        None if t2 is None else _read_checked(t2),
    )


def _read_checked(path: str | Path) -> Image:
    """An MR image that passes :func:`breastseg.sanity.check_image` (finite, not constant, plausible voxels)."""
    image = read_image(path, modality="MR")
    check_image(image, str(path))
    return image


def split_laterality(image: Image, body: np.ndarray | None = None) -> dict[str, Image]:
    """``{"right": …, "left": …}``: the image cut at the middle of the body (``body`` mask, else the image's
    non-zero extent) along the patient's left–right axis."""
    axis, left_high = image.grid.patient_axis(0)
    mask = np.asarray(body, bool) if body is not None else np.asarray(image.array) > 0
    profile = mask.any(axis=tuple(a for a in range(image.ndim) if a != axis))
    if not profile.any():
        raise InputError("laterality split: the image is empty")
    filled = np.flatnonzero(profile)
    cut = int((filled[0] + filled[-1] + 1) // 2)
    if cut <= 0 or cut >= image.shape[axis]:
        raise InputError("laterality split: the body does not span both sides of the field of view")
    low = [slice(None)] * image.ndim
    high = [slice(None)] * image.ndim
    low[axis], high[axis] = slice(0, cut), slice(cut, None)
    low_img, high_img = image.crop(low), image.crop(high)
    return {"left": high_img, "right": low_img} if left_high else {"left": low_img, "right": high_img}
