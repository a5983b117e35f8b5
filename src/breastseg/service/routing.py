"""Which workflow a received study goes to, from its series' headers alone (no pixel is read to decide).

* One CT and one PET series: a **specimen** micro-PET-CT when the CT's field of view fits a lumpectomy specimen
  (at most :data:`SPECIMEN_MAX_FOV_MM` along every side), a **whole-body PET/CT** otherwise; the field of view is
  read from the CT's headers (Rows × Columns × Pixel Spacing in-plane, the span of Image Position (Patient) along
  the slices).
* MR series only: **breast DCE-MRI**, on the dynamic series — the MR series whose instances fall into two or more
  phases at shared slice positions (:func:`breastseg.io.dicom_meta.dynamic_phases`); with several, the one with
  the most phases (a tie is refused: which to read is not ours to guess).
* Ultrasound (US) series only: **breast ultrasound**, every single-frame image of them.

Anything else is refused with what was received.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastseg.errors import BreastsegError
from breastseg.io.dicom import SeriesSummary, list_dicom_series
from breastseg.io.dicom_meta import dynamic_phases

#: the largest field of view (mm, every side) of a specimen scan: a lumpectomy specimen fits in a few centimetres,
#: a whole-body CT's field of view is 500 mm or more
SPECIMEN_MAX_FOV_MM = 200.0
SPECIMEN = "specimen"
PETCT = "petct"
MRI = "mri"
ULTRASOUND = "ultrasound"


class StudyRefused(BreastsegError):
    """A received study no workflow can take; the message says why and what was received."""


@dataclass(frozen=True)
class Route:
    """Where a study goes: ``workflow`` (:data:`SPECIMEN`, :data:`PETCT`, :data:`MRI` or :data:`ULTRASOUND`), the
    series it reads — (CT, PET), (the dynamic MR series,) or the ultrasound series — and, for a PET/CT, the CT's
    field of view (mm, largest side) that decided it; ``phases``: the dynamic MR series' phase count."""

    workflow: str
    series: tuple[SeriesSummary, ...]
    field_of_view_mm: float | None = None
    phases: int | None = None

    @property
    def ct_folder(self) -> Path:
        """The folder holding the CT series' files (the service stores one folder per series)."""
        return _folder(self.series[0])

    @property
    def pet_folder(self) -> Path:
        return _folder(self.series[1])

    @property
    def folders(self) -> tuple[Path, ...]:
        """The folders of the series the workflow reads, in :attr:`series` order."""
        return tuple(_folder(s) for s in self.series)


def _folder(series: SeriesSummary) -> Path:
    return series.files[0].parent


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


def _phase_count(series: SeriesSummary) -> int:
    """The dynamic phases of an MR series (1 for a static one, or when its headers cannot tell phases apart)."""
    try:
        return len(dynamic_phases(list(series.headers), series.series_uid))
    except BreastsegError:
        return 1


def _mri_route(series: list[SeriesSummary], have: str) -> Route:
    counted = sorted(((_phase_count(s), s) for s in series), key=lambda pair: -pair[0])
    best, chosen = counted[0]
    if best < 2:
        raise StudyRefused(f"no dynamic (DCE) MR series in the study: each has one phase (received: {have})")
    if len(counted) > 1 and counted[1][0] == best:
        raise StudyRefused(f"{sum(n == best for n, _ in counted)} dynamic MR series of {best} phases (received: "
                           f"{have}); send the DCE series to assess")  # fmt: skip
    return Route(MRI, (chosen,), phases=best)


def route_study(folder: Path) -> Route:
    """The :class:`Route` of the study in ``folder`` (see the module docstring); :class:`StudyRefused` naming what
    was received when no workflow takes it."""
    if not folder.is_dir():
        raise StudyRefused(f"{folder}: no files received")
    series = list_dicom_series(folder)
    have = ", ".join(f"{s.modality or '?'} ({s.n_instances} images)" for s in series) or "nothing"
    modalities = {s.modality for s in series}
    if series and modalities == {"MR"}:
        return _mri_route(series, have)
    if series and modalities == {"US"}:
        return Route(ULTRASOUND, tuple(series))
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
    return Route(workflow, (found["CT"], found["PT"]), fov)
