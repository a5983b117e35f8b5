"""Input sanity, shared by every workflow: an image that cannot carry a read-out is refused by name before any
work, never turned into a confident answer.

Each check raises :class:`SanityError` (an :class:`~breastseg.errors.InputError`: one line naming the file and the
fix, exit code 2 on the command line) with a short ``code`` that tests, the job store and the docs use
(``docs/explanation/refusals.md``). :class:`NotAssessable` is the sub-kind for inputs that are readable and well
formed but hold no usable signal (a PET without uptake in the specimen): the read-out is "not assessable", never
"negative".

| code | what is refused | why |
|---|---|---|
| ``non-finite`` | NaN or infinite voxels | NaN in a lesion makes SUVmax and TLG 0 and a tumour "none" |
| ``constant`` | every voxel the same (all zero, say) | nothing to segment; an empty mask reads "negative" |
| ``spacing`` | a voxel size outside 0.005–20 mm | a unit error (µm or cm for mm) scales every volume and margin |
| ``not-hu`` | a CT without air (darkest 1 % above −300) or beyond −3100…35000 | raw stored values, not HU |
| ``negative-pet`` | many negative PET values | not activity or SUV |
| ``suv-range`` | SUV maximum above 1000 | a dose, weight or unit error (raw counts as Bq/ml) |
| ``no-uptake`` | no PET signal in the tissue (not assessable) | no signal gives no tumour, which reads "negative" |
| ``pairing`` | DICOM CT and PET of another patient, study or frame | the read-out would mix two people or positions |
"""

from __future__ import annotations

import numpy as np

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.dicom import SeriesIdentity

#: voxel sizes outside this range (mm) are unit errors, not scanners (a 5 µm micro-CT to a 2 cm survey scan)
SPACING_RANGE_MM = (0.005, 20.0)
#: Hounsfield units outside this range are not HU (the padding value −3024 and extended metal scales fit inside)
HU_RANGE = (-3100.0, 35000.0)
#: the darkest 1 % of a CT in HU is air (≈ −1000) around the specimen or the body; raw stored values put it
#: near 0 (or at 24 with the usual 1024 offset), above this
AIR_CEILING_HU = -300.0
#: the median SUV of tissue with any FDG uptake lies far above this (breast fat ≈ 0.2–0.4, decay-corrected)
MIN_MEDIAN_UPTAKE = 0.02
#: an SUV (body weight or lean body mass) above this is a dose, weight or unit error (bladder and brain stay < 100)
MAX_PLAUSIBLE_SUV = 1000.0


class SanityError(InputError):
    """An input fails a sanity check; ``code`` names the check (see the module table)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotAssessable(SanityError):
    """The inputs are readable but hold no usable signal: the read-out is "not assessable"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, f"not assessable: {message}")


def check_finite(image: Image | np.ndarray, source: str) -> None:
    """Refuse NaN or infinite values, with their count."""
    arr = image.array if isinstance(image, Image) else np.asarray(image)
    if arr.dtype.kind != "f":
        return
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        share = "every voxel" if bad == arr.size else f"{bad} of {arr.size} voxels ({100 * bad / arr.size:.2g} %)"
        raise SanityError(
            "non-finite",
            f"{source}: {share} NaN or infinite; replace them (outside the body by the background value) or "
            "re-export the image",
        )


def check_not_constant(image: Image | np.ndarray, source: str) -> None:
    """Refuse an image whose voxels all hold one value (an empty export, a blank frame)."""
    arr = image.array if isinstance(image, Image) else np.asarray(image)
    if arr.size == 0:
        raise SanityError("constant", f"{source}: the image has no voxels")
    lo, hi = arr.min(), arr.max()
    if lo == hi:
        raise SanityError(
            "constant", f"{source}: every voxel is {float(lo):g}; the image holds no picture (a blank or failed export)"
        )


def check_spacing(image: Image, source: str, bounds: tuple[float, float] = SPACING_RANGE_MM) -> None:
    """Refuse voxel sizes outside ``bounds`` (mm): µm or cm taken for mm."""
    low, high = bounds
    bad = [s for s in image.spacing if not (np.isfinite(s) and low <= s <= high)]
    if bad:
        shown = " × ".join(f"{s:g}" for s in image.spacing)
        raise SanityError(
            "spacing",
            f"{source}: voxel size {shown} mm is implausible (expected {low:g}–{high:g} mm per axis); check the "
            "file's spacing and its units",
        )


def check_image(image: Image, source: str) -> None:
    """The checks every image gets: finite values, not constant, a plausible voxel size."""
    check_finite(image, source)
    check_not_constant(image, source)
    check_spacing(image, source)


def check_hu(image: Image, source: str) -> None:
    """A CT must be in Hounsfield units: air present (the darkest 1 % of voxels below :data:`AIR_CEILING_HU`),
    nothing beyond :data:`HU_RANGE`."""
    check_image(image, source)
    lo, hi = float(np.min(image.array)), float(np.max(image.array))
    darkest = float(np.percentile(image.array.ravel()[:: max(1, image.array.size // 1_000_000)], 1))
    if lo >= 0 or darkest > AIR_CEILING_HU:
        raise SanityError(
            "not-hu",
            f"{source}: CT values span {lo:g}…{hi:g} and the darkest 1 % lies at {darkest:.0f}, above "
            f"{AIR_CEILING_HU:g}; in Hounsfield units the air around the specimen or body lies near −1000 (raw "
            "stored values put it near 0 or 24). Apply RescaleSlope/Intercept or convert to HU first",
        )
    if lo < HU_RANGE[0] or hi > HU_RANGE[1]:
        raise SanityError(
            "not-hu",
            f"{source}: CT values span {lo:g}…{hi:g}, beyond Hounsfield units ({HU_RANGE[0]:g}…{HU_RANGE[1]:g}); "
            "check RescaleSlope/Intercept",
        )


def check_pet_values(image: Image, source: str) -> None:
    """A PET must be finite, not constant, of plausible voxel size, and essentially non-negative."""
    check_image(image, source)
    arr = image.array
    if float(np.percentile(arr, 1)) < -0.05 * float(np.max(np.abs(arr)) or 1.0):
        raise SanityError("negative-pet", f"{source}: many negative PET values; expected activity or SUV (≥ 0)")


def check_suv_range(suv: Image | np.ndarray, source: str, units: str = "SUV") -> None:
    """Refuse an SUV image whose maximum is beyond :data:`MAX_PLAUSIBLE_SUV` (a dose, weight or unit error)."""
    arr = suv.array if isinstance(suv, Image) else np.asarray(suv)
    top = float(np.max(arr)) if arr.size else 0.0
    if top > MAX_PLAUSIBLE_SUV:
        raise SanityError(
            "suv-range",
            f"{source}: the {units} maximum is {top:.4g}, beyond any tissue (≤ {MAX_PLAUSIBLE_SUV:g}); check the "
            "injected dose, the patient's weight and the PET's units (Bq/ml, not counts)",
        )


def check_uptake(values: np.ndarray, source: str, where: str, min_median: float = MIN_MEDIAN_UPTAKE) -> None:
    """:class:`NotAssessable` when the PET ``values`` (SUL or SUVbw) inside a region (``where``) carry no signal: no
    positive value, one value throughout, or a median at or below ``min_median`` — most of the tissue shows no
    uptake at all (a failed acquisition whose few non-zero voxels are edge artefacts)."""
    values = np.asarray(values)
    empty = values.size == 0 or float(np.max(values)) <= 0.0 or float(np.min(values)) == float(np.max(values))
    median = float(np.median(values)) if values.size else 0.0
    if empty or median <= min_median:
        level = f"maximum {float(np.max(values)):g}, median {median:.3g}" if values.size else "no voxels"
        raise NotAssessable(
            "no-uptake",
            f"{source}: the PET has no signal in the {where} ({level}); a failed or empty PET cannot show a "
            "tumour, so no margin can be called from it. Check the PET acquisition and its reconstruction",
        )


def check_same_acquisition(first: SeriesIdentity, second: SeriesIdentity, override: str = "") -> None:
    """Refuse two DICOM series (a CT and its PET) that name different patients, studies or frames of reference.

    Identifiers absent from either series are not compared. ``override``: the option that skips this check, named
    in the message.
    """
    fields = (
        ("PatientID (0010,0020)", first.patient_id, second.patient_id),
        ("StudyInstanceUID (0020,000D)", first.study_uid, second.study_uid),
        ("FrameOfReferenceUID (0020,0052)", first.frame_of_reference_uid, second.frame_of_reference_uid),
    )
    differ = [f"{name} {a!r} vs {b!r}" for name, a, b in fields if a is not None and b is not None and a != b]
    if differ:
        hint = f"; if they are one acquisition all the same, add {override}" if override else ""
        raise SanityError(
            "pairing",
            f"{first.source} and {second.source} are not one PET/CT acquisition: {'; '.join(differ)}{hint}",
        )
