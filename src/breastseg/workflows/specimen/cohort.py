"""Reading a specimen study cohort: the lamella manifest (2D, labelled) and the specimen manifest (3D, margins).

The specimen manifest is a CSV with one row per 3D specimen: ``case_id``, ``patient_id``, ``tumour_type``,
``ct`` and ``pet`` (files or DICOM folders, relative to the CSV), ``margin_status`` (``positive`` /
``negative``, from histopathology) and optionally ``pet_info`` (JSON with the injection data, for a PET
without DICOM headers), ``tumour`` (a true tumour mask on the CT grid, for voxel PR-AUC) and ``margin_mm``.
``breastseg phantom specimen-cohort`` writes a cohort in this layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from breastseg.errors import InputError
from breastseg.io.tables import read_csv_rows

SPECIMEN_REQUIRED = ("case_id", "patient_id", "tumour_type", "ct", "pet", "margin_status")


@dataclass(frozen=True)
class SpecimenCase:
    """One 3D specimen of the margin evaluation, with its true (histopathological) margin status."""

    case_id: str
    patient_id: str
    tumour_type: str
    ct: Path
    pet: Path
    positive: bool
    pet_info: Path | None = None
    tumour: Path | None = None
    margin_mm: float | None = None


def _file(manifest: Path, line: int, row: dict[str, str], key: str, required: Sequence[str]) -> Path | None:
    """The file a manifest cell names, relative to the manifest; ``None`` for an empty optional cell."""
    if not row.get(key):
        if key in required:
            raise InputError(f"{manifest}, line {line}: {key} is empty")
        return None
    file = (manifest.parent / row[key]).resolve()
    if not file.exists():
        raise InputError(f"{manifest}, line {line}: {key} file {file} does not exist")
    return file


def read_specimen_manifest(path: str | Path) -> list[SpecimenCase]:
    """Rows of a specimen manifest, paths made absolute; checks columns, statuses and that files exist."""
    path = Path(path)
    rows = read_csv_rows(path, SPECIMEN_REQUIRED, "specimen manifest")
    cases = []
    for line, row in enumerate(rows, start=2):
        status = row["margin_status"].strip().lower()
        if status not in ("positive", "negative"):
            raise InputError(f"{path}, line {line}: margin_status must be positive or negative, got {status!r}")

        def resolve(key: str, line: int = line, row: dict[str, str] = row) -> Path | None:
            return _file(path, line, row, key, SPECIMEN_REQUIRED)

        ct, pet = resolve("ct"), resolve("pet")
        assert ct is not None and pet is not None  # required: resolve raised if empty
        margin = row.get("margin_mm")
        cases.append(
            SpecimenCase(
                case_id=row["case_id"],
                patient_id=row["patient_id"],
                tumour_type=row["tumour_type"],
                ct=ct,
                pet=pet,
                positive=status == "positive",
                pet_info=resolve("pet_info"),
                tumour=resolve("tumour"),
                margin_mm=float(margin) if margin else None,
            )
        )
    return cases


@dataclass(frozen=True)
class UnlabelledSpecimen:
    """A 3D specimen scan without a reference (what distillation learns from); ``patient_id`` may be empty."""

    case_id: str
    ct: Path
    pet: Path
    pet_info: Path | None = None
    patient_id: str = ""


UNLABELLED_REQUIRED = ("case_id", "ct", "pet")


def read_unlabelled_manifest(path: str | Path) -> list[UnlabelledSpecimen]:
    """Rows ``case_id, ct, pet`` (optional ``pet_info``, ``patient_id``; a specimen manifest qualifies: its other
    columns are ignored), paths made absolute; checks that the files exist."""
    path = Path(path)
    rows = read_csv_rows(path, UNLABELLED_REQUIRED, "specimen manifest")
    cases = []
    for line, row in enumerate(rows, start=2):
        ct, pet = (_file(path, line, row, key, UNLABELLED_REQUIRED) for key in ("ct", "pet"))
        assert ct is not None and pet is not None  # required: _file raised if empty
        info = _file(path, line, row, "pet_info", UNLABELLED_REQUIRED)
        cases.append(UnlabelledSpecimen(row["case_id"], ct, pet, info, row.get("patient_id") or ""))
    return cases
