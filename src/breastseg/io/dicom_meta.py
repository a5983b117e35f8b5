"""Typed DICOM metadata: what the workflows need from the headers, parsed once and checked.

The parsers take pydicom datasets (headers only; pixel data not needed) and return frozen dataclasses with
units in their names. Absent tags become ``None``; the code that *needs* a value (SUV, DCE timing) raises an
:class:`~breastseg.errors.InputError` naming the tag when it is missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from pydicom.dataset import Dataset

from breastseg.errors import InputError

# Philips PET private group (7053,xx00 / xx09) and GE PET private post-injection date-time (0009,xx0d)
PHILIPS_PET_CREATOR = "Philips PET Private Group"
GE_PETD_CREATOR = "GEMS_PETD_01"


# ---------------------------------------------------------------------------------------------------
# DICOM date and time values
# ---------------------------------------------------------------------------------------------------
def parse_da(value: Any) -> date | None:
    """Parse a DICOM DA (``YYYYMMDD``; legacy ``YYYY.MM.DD`` accepted)."""
    text = str(value or "").strip().replace(".", "").replace("-", "")
    if not text:
        return None
    if not re.fullmatch(r"\d{8}", text):
        raise ValueError(f"not a DICOM date: {value!r}")
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def parse_tm(value: Any) -> time | None:
    """Parse a DICOM TM (``HH[MM[SS[.FFFFFF]]]``; legacy ``HH:MM:SS`` accepted)."""
    text = str(value or "").strip().replace(":", "")
    if not text:
        return None
    m = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", text)
    if not m:
        raise ValueError(f"not a DICOM time: {value!r}")
    hh, mm, ss, frac = m.groups()
    micro = int((frac or "0").ljust(6, "0"))
    return time(int(hh), int(mm or 0), min(int(ss or 0), 59), micro)


def parse_dt(value: Any) -> datetime | None:
    """Parse a DICOM DT (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``); a UTC offset, if present, is dropped.

    All times of one study share one clock, so offsets are ignored consistently.
    """
    text = str(value or "").strip()
    if not text:
        return None
    text = re.split(r"[+\-]", text, maxsplit=1)[0] if len(text) > 8 else text
    d = parse_da(text[:8])
    t = parse_tm(text[8:]) if len(text) > 8 else time(0)
    assert d is not None
    return datetime.combine(d, t or time(0))


def combine(d: date | None, t: time | None) -> datetime | None:
    return datetime.combine(d, t) if d is not None and t is not None else None


def _get(ds: Dataset, keyword: str) -> Any:
    value = getattr(ds, keyword, None)
    if value is None or value == "":
        return None
    return value


def _float(ds: Dataset, keyword: str) -> float | None:
    value = _get(ds, keyword)
    return None if value is None else float(value)


def _private(ds: Dataset, group: int, creator: str, offset: int) -> Any:
    try:
        block = ds.private_block(group, creator)
        return block[offset].value
    except KeyError:
        return None


def _private_float(ds: Dataset, group: int, creator: str, offset: int) -> float | None:
    value = _private(ds, group, creator, offset)
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore").strip("\x00 ")
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------
# Patient
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatientInfo:
    """Patient data used for SUV normalisation.

    Attributes:
        weight_kg: PatientWeight (0010,1030).
        height_m: PatientSize (0010,1020); DICOM stores metres (values above 3 are read as cm).
        sex: PatientSex (0010,0040): ``"M"``, ``"F"`` or ``"O"``.
    """

    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None


def patient_info(ds: Dataset) -> PatientInfo:
    height = _float(ds, "PatientSize")
    if height is not None and height > 3.0:  # some systems write cm into a metres field
        height = height / 100.0
    sex = _get(ds, "PatientSex")
    return PatientInfo(
        weight_kg=_float(ds, "PatientWeight"),
        height_m=height or None,
        sex=str(sex).strip().upper() or None if sex is not None else None,
    )


# ---------------------------------------------------------------------------------------------------
# PET
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Radiopharmaceutical:
    """First item of RadiopharmaceuticalInformationSequence (0054,0016)."""

    name: str | None = None
    total_dose_bq: float | None = None
    half_life_s: float | None = None
    start_datetime: datetime | None = None
    start_time: time | None = None


@dataclass(frozen=True)
class PetInfo:
    """Everything the QIBA SUV pseudo-code reads from a PET series.

    Attributes:
        source: where the headers came from (a file or folder), for error messages.
        acquisition_datetimes: one per instance; the earliest is the scan start when SeriesDateTime is
            later than acquisition (post-processed series).
        frame_reference_time_ms: FrameReferenceTime (0054,1300) of the first instance.
        philips_suv_scale_factor: Philips private (7053,1000), converts CNTS straight to SUVbw.
        philips_activity_concentration_scale_factor: Philips private (7053,1009), CNTS → Bq/ml.
        ge_post_injection_datetime: GE private (0009,100D) scan date-time.
    """

    source: str
    patient: PatientInfo
    radiopharmaceutical: Radiopharmaceutical
    units: str | None = None
    decay_correction: str | None = None
    corrected_image: tuple[str, ...] = ()
    manufacturer: str | None = None
    series_datetime: datetime | None = None
    acquisition_datetimes: tuple[datetime, ...] = ()
    frame_reference_time_ms: float | None = None
    actual_frame_duration_ms: float | None = None
    philips_suv_scale_factor: float | None = None
    philips_activity_concentration_scale_factor: float | None = None
    ge_post_injection_datetime: datetime | None = None

    @property
    def series_date(self) -> date | None:
        return self.series_datetime.date() if self.series_datetime else None


def _radiopharmaceutical(ds: Dataset) -> Radiopharmaceutical:
    seq = _get(ds, "RadiopharmaceuticalInformationSequence")
    if not seq:
        return Radiopharmaceutical()
    item = seq[0]
    return Radiopharmaceutical(
        name=_get(item, "Radiopharmaceutical"),
        total_dose_bq=_float(item, "RadionuclideTotalDose"),
        half_life_s=_float(item, "RadionuclideHalfLife"),
        start_datetime=parse_dt(_get(item, "RadiopharmaceuticalStartDateTime")),
        start_time=parse_tm(_get(item, "RadiopharmaceuticalStartTime")),
    )


_CONSISTENT_PET_TAGS = ("Units", "DecayCorrection", "PatientWeight", "SeriesInstanceUID")


def pet_info(datasets: Sequence[Dataset], source: str) -> PetInfo:
    """Parse the PET headers of one series (all its instances, or at least one).

    Raises:
        InputError: no instances, a date/time that cannot be parsed, or a per-series tag (Units,
            DecayCorrection, PatientWeight, dose, half-life) that differs between instances.
    """
    if not datasets:
        raise InputError(f"{source}: no PET instances to read the SUV tags from")
    first = datasets[0]
    for keyword in _CONSISTENT_PET_TAGS:
        values = {str(_get(ds, keyword)) for ds in datasets}
        if len(values) > 1:
            raise InputError(f"{source}: {keyword} differs between instances of one series: {sorted(values)}")
    pharma = {_radiopharmaceutical(ds) for ds in datasets}
    if len(pharma) > 1:
        raise InputError(f"{source}: RadiopharmaceuticalInformationSequence differs between instances")
    try:
        acq = []
        for ds in datasets:
            t = parse_dt(_get(ds, "AcquisitionDateTime")) or combine(
                parse_da(_get(ds, "AcquisitionDate")), parse_tm(_get(ds, "AcquisitionTime"))
            )
            if t is not None:
                acq.append(t)
        series_dt = combine(parse_da(_get(first, "SeriesDate")), parse_tm(_get(first, "SeriesTime")))
        ge_scan = parse_dt(_private(first, 0x0009, GE_PETD_CREATOR, 0x0D))
        pharma_info = _radiopharmaceutical(first)
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from exc
    corrected = _get(first, "CorrectedImage") or ()
    if isinstance(corrected, str):
        corrected = [corrected]
    units = _get(first, "Units")
    decay = _get(first, "DecayCorrection")
    return PetInfo(
        source=source,
        patient=patient_info(first),
        radiopharmaceutical=pharma_info,
        units=str(units).strip().upper() if units else None,
        decay_correction=str(decay).strip().upper() if decay else None,
        corrected_image=tuple(str(c).strip().upper() for c in corrected),
        manufacturer=_get(first, "Manufacturer"),
        series_datetime=series_dt,
        acquisition_datetimes=tuple(acq),
        frame_reference_time_ms=_float(first, "FrameReferenceTime"),
        actual_frame_duration_ms=_float(first, "ActualFrameDuration"),
        philips_suv_scale_factor=_private_float(first, 0x7053, PHILIPS_PET_CREATOR, 0x00),
        philips_activity_concentration_scale_factor=_private_float(first, 0x7053, PHILIPS_PET_CREATOR, 0x09),
        ge_post_injection_datetime=ge_scan,
    )


# ---------------------------------------------------------------------------------------------------
# MR dynamic (DCE) phases
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DynamicPhase:
    """One time point of a dynamic series.

    Attributes:
        key: what separates the phases in the headers (TemporalPositionIdentifier, else
            AcquisitionNumber, else the acquisition time itself).
        acquisition_datetime: earliest acquisition date-time of the phase's instances.
        seconds_from_first: time since the first phase's start, in s.
        instance_indices: positions of the phase's instances in the list given to :func:`dynamic_phases`.
    """

    key: float
    acquisition_datetime: datetime | None
    seconds_from_first: float | None
    instance_indices: tuple[int, ...]


def _instance_datetime(ds: Dataset) -> datetime | None:
    return parse_dt(_get(ds, "AcquisitionDateTime")) or combine(
        parse_da(_get(ds, "AcquisitionDate") or _get(ds, "SeriesDate") or _get(ds, "StudyDate")),
        parse_tm(_get(ds, "AcquisitionTime") or _get(ds, "ContentTime")),
    )


def dynamic_phases(datasets: Sequence[Dataset], source: str) -> list[DynamicPhase]:
    """Group the instances of a (DCE) MR series into phases and time them.

    The phase of an instance is its TemporalPositionIdentifier (0020,0100) when present, else its
    AcquisitionNumber (0020,0012), else its acquisition time. Phases are returned in time order.
    """
    if not datasets:
        raise InputError(f"{source}: no MR instances")
    keyword = next(
        (
            k
            for k in ("TemporalPositionIdentifier", "AcquisitionNumber")
            if all(_get(d, k) is not None for d in datasets)
        ),
        None,
    )
    groups: dict[float, list[int]] = {}
    try:
        times = [_instance_datetime(ds) for ds in datasets]
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from exc
    for i, ds in enumerate(datasets):
        if keyword is not None:
            key = float(_get(ds, keyword))
        elif times[i] is not None:
            key = times[i].timestamp()  # type: ignore[union-attr]
        else:
            raise InputError(
                f"{source}: cannot tell the dynamic phases apart: no TemporalPositionIdentifier, "
                "AcquisitionNumber or AcquisitionTime in the headers"
            )
        groups.setdefault(key, []).append(i)
    phases = []
    for key, idx in groups.items():
        stamps = [t for t in (times[i] for i in idx) if t is not None]
        phases.append((min(stamps) if stamps else None, key, tuple(idx)))
    phases.sort(key=lambda p: (p[0] is None, p[0] or datetime.min, p[1]))
    t0 = phases[0][0]
    return [
        DynamicPhase(
            key=key,
            acquisition_datetime=t,
            seconds_from_first=(t - t0) / timedelta(seconds=1) if t is not None and t0 is not None else None,
            instance_indices=idx,
        )
        for t, key, idx in phases
    ]
