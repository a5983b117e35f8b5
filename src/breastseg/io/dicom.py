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


@dataclass(frozen=True)
class SeriesIdentity:
    """Whose and which acquisition a series is: the identifiers two series of one PET/CT share."""

    source: str
    patient_id: str | None
    study_uid: str | None
    frame_of_reference_uid: str | None


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

    def identity(self) -> SeriesIdentity:
        """PatientID, StudyInstanceUID and FrameOfReferenceUID of the first slice (empty values as ``None``)."""
        first = self.headers[0]

        def text(keyword: str) -> str | None:
            value = str(first.get(keyword, "") or "").strip()
            return value or None

        return SeriesIdentity(self.source, text("PatientID"), text("StudyInstanceUID"), text("FrameOfReferenceUID"))


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


#: the SOP class of a DICOMDIR, the one DICOM file in a folder that belongs to no series
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


def _sop_class(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", "") or "")


def _read_headers(files: Sequence[Path]) -> list[tuple[Path, Dataset]]:
    """Headers of the DICOM files among ``files``; other files (notes, a marker) are passed over, but a file that
    starts as DICOM and cannot be parsed (truncated, corrupt) is an error: dropping it would lose a slice."""
    out: list[tuple[Path, Dataset]] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=False)
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
            if is_dicom_file(f):
                raise InputError(f"{f}: a DICOM file that cannot be read ({type(exc).__name__}: {exc})") from exc
            continue
        if "SeriesInstanceUID" in ds:
            out.append((f, ds))
        elif _sop_class(ds) != MEDIA_STORAGE_DIRECTORY:  # every composite object has one; DICOMDIR has none
            raise InputError(
                f"{f}: a DICOM file without SeriesInstanceUID (0020,000E): cut short or corrupt; copy it again"
            )
    return out


def list_dicom_series(path: str | Path) -> list[SeriesSummary]:
    """List the image series under a folder (recursively), largest first."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for f, ds in _read_headers(_candidate_files(path)):
        groups.setdefault(str(ds.SeriesInstanceUID), []).append((f, ds))
    for uid, items in list(groups.items()):
        images = [("Rows" in ds or "PixelData" in ds) for _, ds in items]
        if not any(images):  # a series of non-image objects (SR, presentation states): not a volume
            del groups[uid]
        elif not all(images):  # one file of an image series lacks its image attributes: never drop it silently
            bad = next(f for (f, _), ok in zip(items, images, strict=True) if not ok)
            raise InputError(f"{bad}: an instance of image series {uid} without Rows (0028,0010); damaged file")
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
    if "PixelData" not in ds:
        raise InputError(f"{path}: no pixel data (7FE0,0010); damaged or not an image")
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


#: modalities whose image module makes RescaleSlope and RescaleIntercept mandatory (type 1): without them the
#: stored values are raw (CT: offset by 1024 or more; PET: counts per slice, each slice with its own slope)
RESCALE_REQUIRED = ("CT", "PT")


def _rescale(ds: Dataset, path: Path) -> tuple[float, float]:
    modality = str(getattr(ds, "Modality", "")).upper()
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if modality in RESCALE_REQUIRED and (slope in (None, "") or intercept in (None, "")):
        missing = [
            n
            for n, v in (("RescaleSlope (0028,1053)", slope), ("RescaleIntercept (0028,1052)", intercept))
            if v in (None, "")
        ]
        raise InputError(
            f"{path}: {' and '.join(missing)} missing; a {modality} slice must carry it (its values would be read as "
            "raw stored numbers, not HU or Bq/ml): re-export the series from the scanner"
        )
    try:
        slope_f = 1.0 if slope in (None, "") else float(slope)
        intercept_f = 0.0 if intercept in (None, "") else float(intercept)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: RescaleSlope/Intercept {slope!r}/{intercept!r} are not numbers") from exc
    if not np.isfinite(slope_f) or not np.isfinite(intercept_f) or slope_f == 0:
        raise InputError(f"{path}: RescaleSlope {slope_f!r} / RescaleIntercept {intercept_f!r} cannot scale values")
    return slope_f, intercept_f


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
        slope, intercept = _rescale(ds, f)
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


def _pixel_spacing(headers: Sequence[Dataset], source: str) -> tuple[float, float]:
    """The series' PixelSpacing (row, column; mm), the same on every slice."""
    try:
        spacings = np.array([[float(v) for v in ds.PixelSpacing] for ds in headers])
    except AttributeError as exc:
        raise InputError(f"{source}: PixelSpacing (0028,0030) missing") from exc
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: PixelSpacing (0028,0030) is not two numbers") from exc
    if spacings.ndim != 2 or spacings.shape[1] != 2 or not np.all(np.isfinite(spacings)) or np.any(spacings <= 0):
        raise InputError(f"{source}: PixelSpacing (0028,0030) must be two positive numbers")
    if not np.allclose(spacings, spacings[0], rtol=1e-4, atol=1e-6):
        values = sorted({f"{a:g}\\{b:g}" for a, b in spacings})
        raise InputError(
            f"{source}: slices have different PixelSpacing ({', '.join(values)}); not one volume: re-export the series"
        )
    return float(spacings[0, 0]), float(spacings[0, 1])


#: how far (mm, plus this fraction of a pixel) a slice's origin may lie off the line along the slice normal
STACK_OFFSET_TOLERANCE = (1e-3, 0.05)


def _check_stack_along_normal(
    positions: np.ndarray, normal: np.ndarray, pixel_mm: tuple[float, float], source: str
) -> None:
    """Refuse a stack whose slices are shifted within their own plane from one to the next (a gantry tilt, or a
    sheared series): placing such slices along the normal would misplace them by the shift."""
    if len(positions) < 2:
        return
    steps = positions - positions[0]
    in_plane = steps - np.outer(steps @ normal, normal)
    shift = float(np.max(np.linalg.norm(in_plane, axis=1)))
    if shift > STACK_OFFSET_TOLERANCE[0] + STACK_OFFSET_TOLERANCE[1] * min(pixel_mm):
        travel = positions[-1] - positions[0]
        cos = abs(float(travel @ normal)) / max(float(np.linalg.norm(travel)), 1e-12)
        tilt = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
        raise InputError(
            f"{source}: the slices are not stacked along their normal (gantry tilt or sheared series: the stack "
            f"leans {tilt:.1f}° and the slices shift by up to {shift:.2f} mm within their plane); breastseg would "
            "misplace them: resample the series onto an orthogonal grid (e.g. with dcm2niix's tilt correction) first"
        )


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
    dy, dx = _pixel_spacing(headers, source)
    _check_stack_along_normal(pos[order], normal, (dy, dx), source)
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
