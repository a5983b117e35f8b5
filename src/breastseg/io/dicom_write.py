"""Writing a 3D :class:`Image` as a single-frame DICOM series (CT, PT or MR image storage), and the phases of a
dynamic (DCE) MR acquisition as one series, and a 2D ultrasound image.

Used to export phantoms as the DICOM a scanner would send, and by the round-trip tests. Each slice stores
its geometry (ImagePositionPatient, ImageOrientationPatient, PixelSpacing) from the image's grid; values
are stored as int16 with a per-slice RescaleSlope chosen to keep the float values to 1 part in 32767.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    UltrasoundImageStorage,
    generate_uid,
)

from breastseg._version import __version__
from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.atomic import atomic_path

#: image units → DICOM PET Units (0054,1001); SUVbw is g/ml
_PET_UNITS = {"BQML": "BQML", "CNTS": "CNTS", "SUVbw": "GML", "GML": "GML"}
_SOP_CLASSES = {"CT": CTImageStorage, "PT": PositronEmissionTomographyImageStorage, "MR": MRImageStorage}


@dataclass(frozen=True)
class StudyIdentity:
    """Identifiers shared by the series of one study (CT and PET of one specimen share all of them)."""

    patient_id: str = "BREASTSEG-PHANTOM"
    patient_name: str = "Phantom^Specimen"
    study_instance_uid: str = field(default_factory=generate_uid)
    frame_of_reference_uid: str = field(default_factory=generate_uid)
    study_datetime: _dt.datetime = field(default_factory=lambda: _dt.datetime(2025, 1, 1, 10, 0, 0))
    #: the order's number in the RIS (empty: none, as DICOM allows)
    accession_number: str = ""


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _right_handed(image: Image) -> Image:
    """DICOM slices stack along row × column; flip z when the image's direction is left-handed."""
    assert image.direction is not None
    if np.linalg.det(image.direction) > 0:
        return image
    nz = image.shape[0]
    origin = tuple(image.grid.index_to_world([nz - 1, 0, 0]))
    direction = image.direction.copy()
    direction[:, 2] *= -1
    return Image(image.array[::-1].copy(), image.spacing, origin, direction, image.modality, image.units)


def _quantise(slice_values: np.ndarray, integer: bool) -> tuple[np.ndarray, float, float]:
    if integer:
        lo, hi = float(slice_values.min()), float(slice_values.max())
        if lo >= -32768 and hi <= 32767:
            return np.round(slice_values).astype(np.int16), 1.0, 0.0
    peak = float(np.max(np.abs(slice_values))) if slice_values.size else 0.0
    slope = peak / 32767.0 if peak > 0 else 1.0
    return np.round(slice_values / slope).astype(np.int16), slope, 0.0


def write_dicom_series(
    image: Image,
    folder: str | Path,
    *,
    modality: str | None = None,
    study: StudyIdentity | None = None,
    series_description: str = "",
    series_number: int = 1,
    extra: Dataset | None = None,
    integer_values: bool | None = None,
    series_uid: str | None = None,
    first_instance: int = 1,
) -> list[Path]:
    """Write a 3D image as a DICOM series into ``folder`` (replaced atomically as a whole).

    Args:
        image: the volume; ``image.modality`` is used when ``modality`` is not given.
        folder: output folder; files are named ``IM000001.dcm`` … in slice order.
        modality: ``"CT"``, ``"PT"`` or ``"MR"``.
        study: shared identifiers (a new study when omitted).
        extra: attributes copied into every instance (e.g. PET Units, RadiopharmaceuticalInformationSequence,
            PatientWeight); they override the defaults.
        integer_values: store values as they are (rounded) with slope 1; default True for CT.
        series_uid: the SeriesInstanceUID (default a new one): the phases of one dynamic series share it.
        first_instance: the first slice's InstanceNumber (a dynamic series numbers on across its phases).

    Returns:
        The written files, first slice first.
    """
    modality = (modality or image.modality or "").upper()
    if modality not in _SOP_CLASSES:
        raise InputError(f"cannot write modality {modality!r} as DICOM; choose one of {sorted(_SOP_CLASSES)}")
    if image.ndim != 3:
        raise InputError(f"a DICOM series holds a 3D image, got shape {image.shape}")
    study = study or StudyIdentity()
    integer = modality == "CT" if integer_values is None else integer_values
    image = _right_handed(image)
    assert image.direction is not None
    row, col = image.direction[:, 0], image.direction[:, 1]
    series_uid = series_uid or generate_uid()
    folder = Path(folder)
    written: list[Path] = []
    stamp_date = study.study_datetime.strftime("%Y%m%d")
    stamp_time = study.study_datetime.strftime("%H%M%S")
    with atomic_path(folder, producer="dicom series", dicom_outputs=()) as tmp:
        tmp.mkdir(parents=True)
        for k in range(image.shape[0]):
            values, slope, intercept = _quantise(image.array[k].astype(np.float64), integer)
            ds = Dataset()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = _SOP_CLASSES[modality]
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
            ds.file_meta = meta
            ds.SOPClassUID = meta.MediaStorageSOPClassUID
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.Modality = modality
            ds.PatientID = study.patient_id
            ds.PatientName = study.patient_name
            ds.PatientBirthDate = ""  # type 2: present, unknown (SEG and SR writers copy them)
            ds.PatientSex = ""
            ds.AccessionNumber = study.accession_number
            ds.ReferringPhysicianName = ""
            ds.StudyInstanceUID = study.study_instance_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = study.frame_of_reference_uid
            ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = stamp_date
            ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = stamp_time
            ds.StudyID = "1"
            ds.SeriesNumber = series_number
            ds.InstanceNumber = first_instance + k
            ds.SeriesDescription = series_description
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.AcquisitionNumber = 1
            ds.PositionReferenceIndicator = ""
            if modality != "PT":  # PET describes the position by PatientOrientationCodeSequence instead
                ds.PatientPosition = "HFS"
            ds.Laterality = ""
            ds.Manufacturer = "breastseg"
            ds.SoftwareVersions = __version__
            ds.ImagePositionPatient = [f"{v:.6f}" for v in image.grid.index_to_world([k, 0, 0])]
            ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *col)]
            ds.PixelSpacing = [f"{image.spacing[1]:.8g}", f"{image.spacing[2]:.8g}"]
            ds.SliceThickness = f"{image.spacing[0]:.8g}"
            ds.SpacingBetweenSlices = f"{image.spacing[0]:.8g}"
            ds.Rows, ds.Columns = values.shape
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 1
            ds.RescaleSlope = f"{slope:.10g}"
            ds.RescaleIntercept = f"{intercept:.10g}"
            if modality == "CT":
                ds.RescaleType = "HU"
                ds.KVP = "50"
            if modality == "PT" and image.units in _PET_UNITS:
                ds.Units = _PET_UNITS[image.units]
            if modality == "PT":  # the PET Series / Image modules' required attributes (a static emission image)
                ds.CountsSource = "EMISSION"
                ds.SeriesType = ["STATIC", "IMAGE"]
                ds.NumberOfSlices = image.shape[0]
                ds.ImageIndex = k + 1
                ds.CollimatorType = "NONE"
                ds.FrameReferenceTime = "0"
                ds.ActualFrameDuration = 600000  # ms
                ds.DecayFactor = "1"
                ds.PatientOrientationCodeSequence = DicomSequence()
                ds.PatientGantryRelationshipCodeSequence = DicomSequence()
            ds.PixelData = values.tobytes()
            if extra is not None:
                for elem in extra:
                    ds[elem.tag] = elem
            if modality == "PT":
                for item in ds.get("RadiopharmaceuticalInformationSequence", []):
                    if "RadionuclideCodeSequence" not in item:
                        item.RadionuclideCodeSequence = DicomSequence([_code("77004003", "SCT", "^18^Fluorine")])
            path = tmp / f"IM{k + 1:06d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            written.append(folder / path.name)
    return written


def write_dynamic_series(
    phases: Sequence[Image],
    times_s: Sequence[float],
    folder: str | Path,
    *,
    study: StudyIdentity | None = None,
    series_description: str = "DCE",
    series_number: int = 1,
) -> list[Path]:
    """Write the phases of a dynamic (DCE) MR acquisition as one series, as a scanner sends it: every phase's
    slices share the SeriesInstanceUID and slice positions, phase ``k`` (from 0, the pre-contrast) has
    TemporalPositionIdentifier ``k + 1`` and AcquisitionTime ``times_s[k]`` seconds after the study's time;
    phase ``k`` goes to ``folder/phase_<k>``. Returns every written file, phase by phase."""
    if len(phases) != len(times_s):
        raise InputError(f"{len(phases)} phases but {len(times_s)} acquisition times")
    if len(phases) < 2:
        raise InputError("a dynamic series needs at least two phases")
    study = study or StudyIdentity()
    series_uid = generate_uid()
    written: list[Path] = []
    for k, (image, t) in enumerate(zip(phases, times_s, strict=True)):
        extra = Dataset()
        extra.TemporalPositionIdentifier = k + 1
        extra.NumberOfTemporalPositions = len(phases)
        extra.AcquisitionNumber = k + 1
        acquired = study.study_datetime + _dt.timedelta(seconds=float(t))
        extra.AcquisitionDate = extra.ContentDate = acquired.strftime("%Y%m%d")
        extra.AcquisitionTime = extra.ContentTime = acquired.strftime("%H%M%S.%f")
        written += write_dicom_series(
            image,
            Path(folder) / f"phase_{k}",
            modality="MR",
            study=study,
            series_description=series_description,
            series_number=series_number,
            extra=extra,
            series_uid=series_uid,
            first_instance=1 + k * image.shape[0],
        )
    return written


def write_ultrasound_image(
    pixels: np.ndarray,
    path: str | Path,
    spacing_mm: tuple[float, float] | None,
    *,
    study: StudyIdentity | None = None,
    series_uid: str | None = None,
    instance_number: int = 1,
    series_description: str = "breast ultrasound",
) -> Path:
    """Write one 8-bit grayscale ultrasound image ``(rows, columns)`` as an Ultrasound Image Storage file, as a
    scanner sends it: its pixel size ``(dy, dx)`` mm as one calibrated region of the Sequence of Ultrasound Regions
    (physical units cm), no frame of reference. Written atomically."""
    values = np.asarray(pixels)
    if values.ndim != 2 or values.dtype != np.uint8:
        raise InputError(f"an ultrasound image is 2D uint8, got {values.dtype} of shape {values.shape}")
    study = study or StudyIdentity()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientID, ds.PatientName = study.patient_id, study.patient_name
    ds.PatientBirthDate = ds.PatientSex = ds.ReferringPhysicianName = ""
    ds.AccessionNumber = study.accession_number
    ds.StudyInstanceUID = study.study_instance_uid
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.study_datetime.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study.study_datetime.strftime("%H%M%S")
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, instance_number
    ds.SeriesDescription = series_description
    ds.Manufacturer, ds.SoftwareVersions = "breastseg", __version__
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", "0001"]
    ds.PatientOrientation = ""
    ds.Laterality = ""
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if spacing_mm is not None:
        region = Dataset()
        region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
        region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
        region.RegionLocationMaxX1, region.RegionLocationMaxY1 = values.shape[1] - 1, values.shape[0] - 1
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
        region.PhysicalDeltaY, region.PhysicalDeltaX = spacing_mm[0] / 10.0, spacing_mm[1] / 10.0
        ds.SequenceOfUltrasoundRegions = DicomSequence([region])
    ds.PixelData = values.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path
