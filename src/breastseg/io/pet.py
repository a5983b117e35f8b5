"""Reading a PET with what SUV needs: from a DICOM series its headers, from NIfTI/NRRD/MHA a PET-info JSON."""

from __future__ import annotations

import json
from pathlib import Path

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import DicomSeries, read_dicom_series, read_image
from breastseg.io.dicom_meta import PetInfo
from breastseg.suv import pet_info_from_mapping


def read_pet_info_json(path: str | Path) -> PetInfo:
    """Patient and injection data for a PET without DICOM headers, from JSON.

    Keys (top level or under ``"pet"``, as in a phantom's ``truth.json``): ``patient_weight_kg``,
    ``patient_height_m``, ``patient_sex``, ``injected_dose_bq``, ``injection_datetime``, ``scan_datetime``
    (ISO 8601), optional ``half_life_s`` and ``units``.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read PET info JSON ({exc})") from exc
    return pet_info_from_mapping(doc.get("pet", doc), str(path))


def read_pet(path: str | Path, pet_info_path: str | Path | None = None) -> tuple[Image, PetInfo | None]:
    """A PET image and its SUV metadata: a DICOM folder (or file) brings its headers; a PET-info JSON replaces
    them and gives a NIfTI PET its units when the file has none."""
    pet, info, _series = read_pet_series(path, pet_info_path)
    return pet, info


def read_pet_series(
    path: str | Path, pet_info_path: str | Path | None = None
) -> tuple[Image, PetInfo | None, DicomSeries | None]:
    """:func:`read_pet`, and the DICOM series itself when the PET is DICOM (its identity, for pairing checks)."""
    path = Path(path)
    info = None
    series = None
    if path.is_dir() or path.suffix.lower() == ".dcm":
        series = read_dicom_series(path, modality="PT")
        pet, info = series.image, series.pet_info()
    else:
        pet = read_image(path, modality="PT")
    if pet_info_path is not None:
        info = read_pet_info_json(pet_info_path)
        if pet.units is None and info.units is not None:
            pet = pet.with_array(pet.array, units=info.units)
    return pet, info, series
