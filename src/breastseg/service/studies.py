"""What the service reads of a received study's headers: who and when (patient, accession, study date and time),
from the header of one of its files — for the job list, the result pages and the choice of a prior study."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

#: identifying DICOM attributes the job list and result pages show
IDENTITY = ("PatientID", "PatientName", "AccessionNumber", "StudyDate", "StudyDescription")


def study_header(folder: Path, keywords: Sequence[str] = IDENTITY) -> dict[str, str]:
    """The attributes ``keywords`` of a received study that have a value, read from the header of one of its files;
    empty when there is none (a study not yet received, or not DICOM)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not folder.is_dir():
        return {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(keywords))
        except (InvalidDicomError, OSError):  # not a DICOM file: the next one
            continue
        return {k: str(ds.get(k)) for k in keywords if ds.get(k) not in (None, "")}
    return {}


def study_datetime(folder: Path) -> datetime.datetime | None:
    """A received study's Study Date and Time (``None`` without a date; midnight without a time)."""
    header = study_header(folder, ("StudyDate", "StudyTime"))
    date, clock = header.get("StudyDate", ""), header.get("StudyTime", "000000")
    try:
        return datetime.datetime.strptime(date + clock.split(".")[0].ljust(6, "0")[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None
