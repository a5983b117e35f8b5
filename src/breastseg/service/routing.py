"""Which workflow a received study goes to, from its series alone.

A study with one CT and one PET series is a **specimen** micro-PET-CT when the CT's field of view fits a lumpectomy
specimen (at most :data:`SPECIMEN_MAX_FOV_MM` along every side) and a **whole-body PET/CT** otherwise; the field
of view is read from the CT's headers (Rows × Columns × Pixel Spacing in-plane, the span of Image Position
(Patient) along the slices), so no pixel is read to decide. Anything else is refused with what was received.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastseg.errors import BreastsegError
from breastseg.io.dicom import SeriesSummary, list_dicom_series

#: the largest field of view (mm, every side) of a specimen scan: a lumpectomy specimen fits in a few centimetres,
#: a whole-body CT's field of view is 500 mm or more
SPECIMEN_MAX_FOV_MM = 200.0
SPECIMEN = "specimen"
PETCT = "petct"


class StudyRefused(BreastsegError):
    """A received study no workflow can take; the message says why and what was received."""


@dataclass(frozen=True)
class Route:
    """Where a study goes: ``workflow`` (:data:`SPECIMEN` or :data:`PETCT`), its CT and PET series, and the CT's
    field of view (mm, largest side) that decided it."""

    workflow: str
    ct: SeriesSummary
    pet: SeriesSummary
    field_of_view_mm: float

    @property
    def ct_folder(self) -> Path:
        """The folder holding the CT series' files (the service stores one folder per series)."""
        return self.ct.files[0].parent

    @property
    def pet_folder(self) -> Path:
        return self.pet.files[0].parent


def field_of_view_mm(series: SeriesSummary) -> float:
    """The largest side (mm) of a series' volume from its headers: in-plane Rows × Columns × Pixel Spacing, and
    the span of the slice positions along the slice normal plus one slice."""
    first = series.headers[0]
    spacing = [float(v) for v in first.get("PixelSpacing", (1.0, 1.0))]
    in_plane = max(int(first.get("Rows", 0)) * spacing[0], int(first.get("Columns", 0)) * spacing[1])
    positions = [h.get("ImagePositionPatient") for h in series.headers]
    orientation = first.get("ImageOrientationPatient")
    if orientation is None or any(p is None for p in positions) or len(positions) < 2:
        return in_plane
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    along = np.asarray(positions, float) @ np.cross(row, col)
    step = float(np.median(np.diff(np.sort(along)))) if len(along) > 1 else 0.0
    return max(in_plane, float(along.max() - along.min()) + step)


def route_study(folder: Path) -> Route:
    """The :class:`Route` of the study in ``folder``; :class:`StudyRefused` naming what was received when it needs
    anything but one CT and one PET series."""
    if not folder.is_dir():
        raise StudyRefused(f"{folder}: no files received")
    series = list_dicom_series(folder)
    have = ", ".join(f"{s.modality or '?'} ({s.n_instances} images)" for s in series) or "nothing"
    found = {}
    for needed, name in (("CT", "CT"), ("PT", "PET")):
        matching = [s for s in series if s.modality == needed]
        if not matching:
            raise StudyRefused(f"no {name} series in the study (received: {have})")
        if len(matching) > 1:
            raise StudyRefused(f"{len(matching)} {name} series in the study (received: {have}); send one")
        found[needed] = matching[0]
    fov = field_of_view_mm(found["CT"])
    workflow = SPECIMEN if fov <= SPECIMEN_MAX_FOV_MM else PETCT
    return Route(workflow, found["CT"], found["PT"], fov)
