"""Standardised uptake values: SUVbw and SUL (SUV normalised to lean body mass, Janmahasatian).

The scale factor from stored PET values to SUVbw follows the QIBA vendor-neutral pseudo-code
("Vendor-neutral pseudo-code for SUV calculation", QIBA FDG-PET/CT profile wiki):

* Units BQML (Bq/ml), images corrected for attenuation (ATTN) and decay (DECY) with DecayCorrection START:
  the injected dose is decayed from the injection to the scan start; the scan start is SeriesDate/Time
  unless that is later than the earliest AcquisitionDate/Time (a post-processed series), in which case the
  GE private post-injection date-time (0009,100D) is used when present, else the earliest acquisition.
  Injection: RadiopharmaceuticalStartDateTime, else the scan date with RadiopharmaceuticalStartTime.
  ``factor = weight [g] / decayed dose [Bq]``.
* Units CNTS (Philips): the private SUV scale factor (7053,1000); failing that, the private activity
  concentration factor (7053,1009) converts counts to Bq/ml and the BQML path goes on.
* Units GML (g/ml) are SUVbw already; the factor is 1 (never re-scaled).

``SUV = stored value (after RescaleSlope/Intercept) × factor``; ``SUL = SUVbw × LBM / weight``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.dicom_meta import PatientInfo, PetInfo, Radiopharmaceutical

SuvKind = Literal["bw", "lbm"]

#: half-life of fluorine-18, s (109.77 min, as DICOM headers of FDG series give it)
F18_HALF_LIFE_S = 6586.2

#: image ``units`` for each kind of SUV
SUV_UNITS: dict[str, str] = {"bw": "SUVbw", "lbm": "SUL"}

_ALREADY_SUVBW = {"GML", "SUV", "SUVBW"}


#: plausible ranges of the SUV inputs: outside them a value is a typing or unit error (grams for kg, cm for m,
#: MBq for Bq), never a patient; the bounds are wide (a neonate to the heaviest recorded adult; a preclinical
#: mouse dose to ten clinical doses; a half-life from O-15 to I-124)
WEIGHT_RANGE_KG = (0.5, 650.0)
HEIGHT_RANGE_M = (0.3, 2.75)
DOSE_RANGE_BQ = (1.0e5, 5.0e10)
HALF_LIFE_RANGE_S = (60.0, 1.0e7)


def plausible(value: float | None, tag: str, unit: str, bounds: tuple[float, float], source: str) -> float:
    """``value`` when it is finite and within ``bounds``; else an :class:`InputError` naming ``tag`` and the range.

    Missing (``None``), zero, NaN and infinite values are refused as missing or not a number; a value outside the
    range as implausible (a unit mix-up, most often).
    """
    low, high = bounds
    if value is None or value == 0:
        raise InputError(f"{source}: {tag} is missing or zero")
    if not math.isfinite(value):
        raise InputError(f"{source}: {tag} is {value!r}, not a number")
    if not low <= value <= high:
        raise InputError(
            f"{source}: {tag} {value:g} {unit} is implausible (expected {low:g}–{high:g} {unit}); check its units"
        )
    return float(value)


def lean_body_mass_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass by Janmahasatian et al., Clin Pharmacokinet 2005;44:1051–65, in kg.

    ``LBM = 9270 · W / (6680 + 216 · BMI)`` for men and ``9270 · W / (8780 + 244 · BMI)`` for women,
    with ``BMI = W / H²`` (kg, m).

    Raises:
        InputError: non-positive weight or height, or a sex other than ``"M"`` / ``"F"``.
    """
    weight_kg = plausible(weight_kg, "PatientWeight (0010,1030)", "kg", WEIGHT_RANGE_KG, "lean body mass")
    height_m = plausible(height_m, "PatientSize (0010,1020)", "m", HEIGHT_RANGE_M, "lean body mass")
    bmi = weight_kg / height_m**2
    sex_code = (sex or "").strip().upper()[:1]
    if sex_code == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    if sex_code == "F":
        return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    raise InputError(f"lean body mass (Janmahasatian) needs PatientSex (0010,0040) M or F, got {sex!r}")


def scan_datetime(info: PetInfo) -> datetime:
    """Start of the scan to which the injected dose is decayed (QIBA rule, see module docstring)."""
    earliest_acq = min(info.acquisition_datetimes) if info.acquisition_datetimes else None
    if info.series_datetime is not None and (earliest_acq is None or info.series_datetime <= earliest_acq):
        return info.series_datetime
    if info.ge_post_injection_datetime is not None:
        return info.ge_post_injection_datetime
    if earliest_acq is not None:
        return earliest_acq
    raise InputError(f"{info.source}: SeriesDate/SeriesTime (0008,0021/0031) and AcquisitionTime missing")


def injection_datetime(info: PetInfo, scan: datetime) -> datetime:
    """Injection date-time: RadiopharmaceuticalStartDateTime, else the scan date plus the start time.

    Without a date, an injection time later than the scan time is taken to be on the previous day
    (an injection before midnight and a scan after it).
    """
    pharma = info.radiopharmaceutical
    if pharma.start_datetime is not None:
        return pharma.start_datetime
    if pharma.start_time is None:
        raise InputError(
            f"{info.source}: RadiopharmaceuticalStartTime (0018,1072) and RadiopharmaceuticalStartDateTime "
            "(0018,1078) are both missing; the injection time is needed for decay correction"
        )
    date = info.series_date or scan.date()
    injected = datetime.combine(date, pharma.start_time)
    if injected > scan:
        injected -= timedelta(days=1)
    return injected


def decay_time_s(info: PetInfo) -> float:
    """Seconds from injection to scan start over which the dose decays (0 for DecayCorrection ADMIN)."""
    if info.decay_correction == "ADMIN":
        return 0.0
    scan = scan_datetime(info)
    dt = (scan - injection_datetime(info, scan)).total_seconds()
    if dt < 0:
        raise InputError(f"{info.source}: injection time is after the scan start ({dt:.0f} s); check the times")
    return dt


def _bqml_factor(info: PetInfo) -> float:
    missing = [c for c in ("ATTN", "DECY") if c not in info.corrected_image]
    if missing:
        raise InputError(
            f"{info.source}: CorrectedImage (0028,0051) lacks {'/'.join(missing)} "
            f"({list(info.corrected_image)}); SUV needs attenuation- and decay-corrected images"
        )
    if info.decay_correction not in ("START", "ADMIN"):
        raise InputError(
            f"{info.source}: DecayCorrection (0054,1102) is {info.decay_correction!r}; SUV is defined here for "
            "START (decayed to scan start) or ADMIN"
        )
    weight = plausible(info.patient.weight_kg, "PatientWeight (0010,1030)", "kg", WEIGHT_RANGE_KG, info.source)
    dose = plausible(
        info.radiopharmaceutical.total_dose_bq,
        "RadionuclideTotalDose (0018,1074) in RadiopharmaceuticalInformationSequence (0054,0016)",
        "Bq",
        DOSE_RANGE_BQ,
        info.source,
    )
    half_life = plausible(
        info.radiopharmaceutical.half_life_s, "RadionuclideHalfLife (0018,1075)", "s", HALF_LIFE_RANGE_S, info.source
    )
    decayed = dose * 2.0 ** (-decay_time_s(info) / half_life)
    return weight * 1000.0 / decayed


def suv_bw_scale_factor(info: PetInfo) -> float:
    """Factor that turns stored PET values into SUVbw (g/ml): ``SUVbw = value × factor``."""
    units = (info.units or "").upper()
    if units in _ALREADY_SUVBW:
        return 1.0
    if units == "BQML":
        return _bqml_factor(info)
    if units == "CNTS":
        if info.philips_suv_scale_factor:
            return info.philips_suv_scale_factor
        if info.philips_activity_concentration_scale_factor:
            return info.philips_activity_concentration_scale_factor * _bqml_factor(info)
        raise InputError(
            f"{info.source}: Units (0054,1001) is CNTS but neither Philips private SUV scale factor (7053,1000) "
            "nor activity concentration scale factor (7053,1009) is present"
        )
    raise InputError(f"{info.source}: Units (0054,1001) {info.units!r} cannot be converted to SUV")


def suv_scale_factor(info: PetInfo, kind: SuvKind = "bw") -> float:
    """Factor from stored values to SUVbw (``kind="bw"``) or SUL (``kind="lbm"``)."""
    factor = suv_bw_scale_factor(info)
    if kind == "bw":
        return factor
    if kind == "lbm":
        return factor * _lbm_over_weight(info)
    raise InputError(f"SUV kind must be 'bw' or 'lbm', got {kind!r}")


def _lbm_over_weight(info: PetInfo) -> float:
    p = info.patient
    try:
        lbm = lean_body_mass_kg(p.weight_kg or 0.0, p.height_m or 0.0, p.sex or "")
    except InputError as exc:
        raise InputError(f"{info.source}: {exc}") from exc
    assert p.weight_kg is not None
    return lbm / p.weight_kg


def to_suv(image: Image, info: PetInfo, kind: SuvKind = "bw") -> Image:
    """Convert a PET image to SUVbw or SUL, recognising images already in SUV.

    An image whose ``units`` are already ``SUVbw``/``GML`` or ``SUL`` is converted between the two (or
    returned unchanged) instead of being scaled again. Otherwise the image's units (or the headers'
    Units) select the QIBA path.

    Returns:
        A float32 image with ``units`` ``"SUVbw"`` or ``"SUL"``.
    """
    target = SUV_UNITS[kind]
    units = (image.units or info.units or "").upper()
    if image.units == target:
        return image
    if units in _ALREADY_SUVBW:
        factor = 1.0 if kind == "bw" else _lbm_over_weight(info)
    elif units == "SUL":
        factor = 1.0 / _lbm_over_weight(info)
    else:
        factor = suv_scale_factor(replace(info, units=units or info.units), kind)
    return image.with_array((image.array * factor).astype("float32"), units=target)


def pet_info_from_values(
    *,
    weight_kg: float | None,
    injected_dose_bq: float | None,
    injection_time: datetime | None,
    scan_time: datetime | None,
    height_m: float | None = None,
    sex: str | None = None,
    half_life_s: float = F18_HALF_LIFE_S,
    units: str = "BQML",
    source: str = "values given on the command line",
) -> PetInfo:
    """SUV metadata given by hand (for NIfTI/NRRD PET, which carries no DICOM headers); ``None`` where a PET
    already in SUV does not need the value (:func:`to_suv` names what a conversion misses)."""
    return PetInfo(
        source=source,
        patient=PatientInfo(weight_kg=weight_kg, height_m=height_m, sex=sex),
        radiopharmaceutical=Radiopharmaceutical(
            total_dose_bq=injected_dose_bq, half_life_s=half_life_s, start_datetime=injection_time
        ),
        units=units.upper(),
        decay_correction="START",
        corrected_image=("ATTN", "DECY"),
        series_datetime=scan_time,
        acquisition_datetimes=(scan_time,) if scan_time is not None else (),
    )


def already_suv(units: str | None) -> bool:
    """Whether PET ``units`` are SUV already (SUVbw, GML or SUL): no dose or times are needed to read them."""
    return (units or "").upper() in {*_ALREADY_SUVBW, "SUL"}


def normalise_pet_units(text: str) -> str:
    """``--pet-units`` in any letter case → ``BQML``, ``SUVbw`` or ``SUL``."""
    known = {"BQML": "BQML", "SUVBW": "SUVbw", "SUV": "SUVbw", "GML": "SUVbw", "SUL": "SUL"}
    try:
        return known[text.strip().upper()]
    except KeyError as exc:
        raise InputError(f"PET units {text!r}: use BQML, SUVbw or SUL (any letter case)") from exc


#: what each PET-info key is needed for (the error lists every missing one at once)
_NEEDED_FOR_BQML = ("patient_weight_kg", "injected_dose_bq", "injection_datetime", "scan_datetime")


def pet_info_from_mapping(doc: Mapping[str, Any], source: str) -> PetInfo:
    """SUV metadata from a JSON-like mapping (a phantom's ``truth.json`` ``"pet"`` section has this form).

    Keys: ``patient_weight_kg``, ``patient_height_m``, ``patient_sex``, ``injected_dose_bq``,
    ``injection_datetime``, ``scan_datetime`` (ISO 8601); optional ``half_life_s`` and ``units`` (default
    ``BQML``). A PET in Bq/ml needs the weight, the dose and both times (SUVbw); height and sex are needed only
    for SUL. A PET already in SUV (``units`` ``SUVbw``, ``GML`` or ``SUL``) needs nothing; weight, height and
    sex, when given, give it its SUL. Every missing key is named in one error.
    """
    units = str(doc.get("units", "BQML")).upper()
    missing = [] if already_suv(units) else [k for k in _NEEDED_FOR_BQML if doc.get(k) in (None, "")]
    if missing:
        raise InputError(
            f"{source}: a PET in {units} needs {', '.join(missing)} for SUV (and patient_height_m and patient_sex "
            'for SUL); a PET already in SUV needs none of them: give "units": "SUVbw"'
        )

    def number(key: str) -> float | None:
        return float(doc[key]) if doc.get(key) not in (None, "") else None

    def moment(key: str) -> datetime | None:
        return datetime.fromisoformat(str(doc[key])) if doc.get(key) not in (None, "") else None

    try:
        return pet_info_from_values(
            weight_kg=number("patient_weight_kg"),
            height_m=number("patient_height_m"),
            sex=str(doc["patient_sex"]) if doc.get("patient_sex") not in (None, "") else None,
            injected_dose_bq=number("injected_dose_bq"),
            half_life_s=number("half_life_s") or F18_HALF_LIFE_S,
            injection_time=moment("injection_datetime"),
            scan_time=moment("scan_datetime"),
            units=units,
            source=source,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: malformed PET info ({exc})") from exc
