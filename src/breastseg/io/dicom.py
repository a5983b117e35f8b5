"""Reading DICOM image series (CT, PET, MR, US) with pydicom, geometry from the headers.

A series is a folder (searched recursively) or one of its files. Slices are sorted along the slice normal
(the cross product of the ImageOrientationPatient cosines); each slice's RescaleSlope / RescaleIntercept is
applied (PET slices carry their own slope). The image's origin is the ImagePositionPatient of the first
sorted slice; its direction has the row cosine, the column cosine and the normal as columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.dicom_meta import DynamicPhase, PetInfo, dynamic_phases, pet_info

#: relative tolerance on the spread of slice gaps before a series counts as non-uniform
SLICE_GAP_RTOL = 0.01


@dataclass(frozen=True)
class SeriesSummary:
    """One series found in a folder."""

    series_uid: str
    modality: str | None
    description: str | None
    n_instances: int
    files: tuple[Path, ...] = field(repr=False)
    headers: tuple[Dataset, ...] = field(repr=False, default=())


@dataclass(frozen=True, eq=False)
class DicomSeries:
    """A read series: the image, its sorted headers (no pixel data) and their files."""

    image: Image
    headers: tuple[Dataset, ...] = field(repr=False)
    files: tuple[Path, ...] = field(repr=False)
    source: str = ""

    @property
    def modality(self) -> str | None:
        return self.image.modality

    def pet_info(self) -> PetInfo:
        """PET SUV metadata of this series (see :func:`breastseg.io.dicom_meta.pet_info`)."""
        return pet_info(self.headers, self.source)


def is_dicom_file(path: Path) -> bool:
    """True when the file has the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _candidate_files(path: Path) -> list[Path]:
    if path.is_file():
        return sorted(p for p in path.parent.iterdir() if p.is_file())
    return sorted(p for p in path.rglob("*") if p.is_file())


def _read_headers(files: Sequence[Path]) -> list[tuple[Path, Dataset]]:
    out: list[tuple[Path, Dataset]] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=False)
        except (InvalidDicomError, OSError, EOFError):
            continue
        if "SeriesInstanceUID" in ds:
            out.append((f, ds))
    return out


def list_dicom_series(path: str | Path) -> list[SeriesSummary]:
    """List the image series under a folder (recursively), largest first."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for f, ds in _read_headers(_candidate_files(path)):
        if "PixelData" in ds or "Rows" in ds:
            groups.setdefault(str(ds.SeriesInstanceUID), []).append((f, ds))
    summaries = [
        SeriesSummary(
            series_uid=uid,
            modality=getattr(items[0][1], "Modality", None),
            description=getattr(items[0][1], "SeriesDescription", None),
            n_instances=len(items),
            files=tuple(f for f, _ in items),
            headers=tuple(ds for _, ds in items),
        )
        for uid, items in groups.items()
    ]
    return sorted(summaries, key=lambda s: -s.n_instances)


def _select_series(path: Path, series_uid: str | None, modality: str | None) -> SeriesSummary:
    series = list_dicom_series(path)
    if path.is_file():
        if not is_dicom_file(path) and not any(path in s.files for s in series):
            raise InputError(f"{path}: not a DICOM file")
        own = [s for s in series if path in s.files]
        if series_uid is None and own:
            return own[0]
    if not series:
        raise InputError(f"{path}: no DICOM image series found (empty folder or no readable DICOM files)")
    if series_uid is not None:
        match = [s for s in series if s.series_uid == series_uid]
        if not match:
            raise InputError(f"{path}: no series with SeriesInstanceUID {series_uid}")
        return match[0]
    if modality is not None:
        series = [s for s in series if (s.modality or "").upper() == modality.upper()]
        if not series:
            raise InputError(f"{path}: no {modality} series found")
    if len(series) > 1:
        listing = "; ".join(f"{s.series_uid} ({s.modality}, {s.description!r}, {s.n_instances} files)" for s in series)
        raise InputError(f"{path}: holds {len(series)} series; choose one by SeriesInstanceUID: {listing}")
    return series[0]


def _slice_geometry(headers: Sequence[Dataset], source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row cosine, column cosine and the normal; checks that all slices share the orientation."""
    try:
        orients = np.array([[float(v) for v in ds.ImageOrientationPatient] for ds in headers])
    except AttributeError as exc:
        raise InputError(f"{source}: ImageOrientationPatient (0020,0037) missing") from exc
    if not np.allclose(orients, orients[0], atol=1e-4):
        raise InputError(f"{source}: slices have different ImageOrientationPatient; not one volume")
    row, col = orients[0, :3], orients[0, 3:]
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    return row, col, np.cross(row, col)


def _positions(headers: Sequence[Dataset], source: str) -> np.ndarray:
    try:
        return np.array([[float(v) for v in ds.ImagePositionPatient] for ds in headers])
    except AttributeError as exc:
        raise InputError(f"{source}: ImagePositionPatient (0020,0032) missing") from exc


_NATIVE_LITTLE_ENDIAN = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}


def _stored_values(ds: Dataset, path: Path) -> np.ndarray:
    """Stored pixel values of one single-frame slice; uncompressed little-endian data is read directly."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    bits = int(getattr(ds, "BitsAllocated", 0))
    if (
        syntax in _NATIVE_LITTLE_ENDIAN
        and bits in (8, 16, 32)
        and int(getattr(ds, "SamplesPerPixel", 1)) == 1
        and int(getattr(ds, "NumberOfFrames", 1) or 1) == 1
    ):
        kind = "i" if int(getattr(ds, "PixelRepresentation", 0)) == 1 else "u"
        rows, cols = int(ds.Rows), int(ds.Columns)
        expected = rows * cols * bits // 8
        if len(ds.PixelData) < expected:
            raise InputError(
                f"{path}: pixel data truncated ({len(ds.PixelData)} bytes; {rows} x {cols} x {bits} bits need "
                f"{expected})"
            )
        raw = np.frombuffer(ds.PixelData, dtype=f"<{kind}{bits // 8}", count=rows * cols)
        return raw.reshape(rows, cols)
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom raises many types for unsupported transfer syntaxes
        raise InputError(f"{path}: cannot decode pixel data ({exc})") from exc
    return arr


def _pixels(files: Sequence[Path], source: str) -> np.ndarray:
    out: np.ndarray | None = None
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        stored = _stored_values(ds, f)
        if stored.ndim != 2:
            raise InputError(f"{f}: multi-frame or colour DICOM ({stored.shape}) is not supported here; {source}")
        if out is None:
            out = np.empty((len(files), *stored.shape), dtype=np.float32)
        elif stored.shape != out.shape[1:]:
            raise InputError(f"{source}: slices have different Rows/Columns; not one volume")
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        out[k] = stored * slope + intercept
    assert out is not None
    return out


def _units(ds: Dataset) -> str | None:
    modality = str(getattr(ds, "Modality", "")).upper()
    if modality == "CT":
        return "HU"
    if modality == "PT":
        return str(getattr(ds, "Units", "") or "").strip().upper() or None
    return None


def _volume_from(files: Sequence[Path], headers: Sequence[Dataset], source: str) -> tuple[Image, list[int]]:
    row, col, normal = _slice_geometry(headers, source)
    pos = _positions(headers, source)
    along = pos @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    along_sorted = along[order]
    gaps = np.diff(along_sorted)
    if gaps.size and np.min(gaps) < 1e-3:
        raise InputError(
            f"{source}: two slices share one position; a dynamic (multi-phase) series must be read with "
            "read_dicom_phases"
        )
    first = headers[order[0]]
    try:
        dy, dx = (float(v) for v in first.PixelSpacing)
    except AttributeError as exc:
        raise InputError(f"{source}: PixelSpacing (0028,0030) missing") from exc
    if gaps.size:
        dz = round(float(np.median(gaps)), 6)  # positions are stored to ~1e-6 mm; drop the float noise
        if np.max(np.abs(gaps - dz)) > SLICE_GAP_RTOL * dz + 1e-3:
            raise InputError(
                f"{source}: slice spacing is not uniform (gaps {gaps.min():.4g}–{gaps.max():.4g} mm); missing "
                "slices or a gantry tilt: resample it before use"
            )
    else:
        dz = float(getattr(first, "SpacingBetweenSlices", None) or getattr(first, "SliceThickness", None) or 1.0)
    pixels = _pixels([files[i] for i in order], source)
    direction = np.column_stack([row, col, normal])
    image = Image(
        pixels,
        spacing=(dz, dy, dx),
        origin=tuple(pos[order[0]]),
        direction=direction,
        modality=str(getattr(first, "Modality", "")) or None,
        units=_units(first),
    )
    return image, order


def read_dicom_series(path: str | Path, series_uid: str | None = None, modality: str | None = None) -> DicomSeries:
    """Read one DICOM series into a 3D :class:`Image` with its headers.

    Args:
        path: a folder (searched recursively) or one file of the series.
        series_uid: which series, when the folder holds several.
        modality: pick the only series of this modality (``"CT"``, ``"PT"``, ``"MR"``) when several.

    Raises:
        InputError: no series, several series and no choice, inconsistent or missing geometry tags,
            duplicate slice positions, non-uniform slice spacing, undecodable pixels.
    """
    path = Path(path)
    summary = _select_series(path, series_uid, modality)
    source = f"{path} (series {summary.series_uid})"
    files, headers = list(summary.files), list(summary.headers)
    image, order = _volume_from(files, headers, source)
    return DicomSeries(
        image=image,
        headers=tuple(headers[i] for i in order),
        files=tuple(files[i] for i in order),
        source=str(path),
    )


def read_dicom_phases(path: str | Path, series_uid: str | None = None) -> list[tuple[DynamicPhase, DicomSeries]]:
    """Read a dynamic (DCE) series whose phases share slice positions: one volume per phase, in time order."""
    path = Path(path)
    summary = _select_series(path, series_uid, None)
    source = f"{path} (series {summary.series_uid})"
    pairs = list(zip(summary.files, summary.headers, strict=True))
    phases = dynamic_phases([ds for _, ds in pairs], source)
    out = []
    for phase in phases:
        files = [pairs[i][0] for i in phase.instance_indices]
        headers = [pairs[i][1] for i in phase.instance_indices]
        image, order = _volume_from(files, headers, f"{source}, phase {phase.key:g}")
        series = DicomSeries(image, tuple(headers[i] for i in order), tuple(files[i] for i in order), str(path))
        out.append((phase, series))
    return out
