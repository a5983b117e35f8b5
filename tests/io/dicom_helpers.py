"""DICOM written by the tests themselves with plain pydicom (independent of breastseg's writer)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def hand_written_series(
    folder: Path,
    values: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    origin_xyz: tuple[float, float, float],
    direction: np.ndarray,
    *,
    slopes: list[float] | None = None,
    intercept: float = -1024.0,
    modality: str = "CT",
    series_uid: str | None = None,
    file_order: list[int] | None = None,
    tweak: Callable[[int, Dataset], None] | None = None,
) -> str:
    """Write ``values`` (z, y, x) slice by slice; files are named in ``file_order`` (to test sorting)."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    nz = values.shape[0]
    order = file_order or list(range(nz))
    row, col, normal = direction[:, 0], direction[:, 1], direction[:, 2]
    for k in range(nz):
        slope = slopes[k] if slopes else 1.0
        stored = np.round((values[k] - intercept) / slope).astype(np.int16)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality = modality
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = generate_uid()
        ds.PatientID = "TEST"
        ds.InstanceNumber = nz - k  # deliberately not the slice order
        pos = np.asarray(origin_xyz) + k * spacing_zyx[0] * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *col)]
        ds.PixelSpacing = [f"{spacing_zyx[1]:g}", f"{spacing_zyx[2]:g}"]
        ds.SliceThickness = f"{spacing_zyx[0]:g}"
        ds.Rows, ds.Columns = values.shape[1:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.PixelData = stored.tobytes()
        if tweak:
            tweak(k, ds)
        ds.save_as(folder / f"file{order[k]:03d}.dcm", enforce_file_format=True)
    return series_uid


def dynamic_phase_tweak(phase: int, acquisition_time: str, date: str = "20240501") -> Callable[[int, Dataset], None]:
    """A ``tweak`` that makes the slices one MR phase of a dynamic series (temporal position, acquisition time)."""

    def tweak(k: int, ds: Dataset) -> None:
        ds.Modality = "MR"
        ds.TemporalPositionIdentifier = phase
        ds.AcquisitionDate = date
        ds.AcquisitionTime = acquisition_time
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID

    return tweak
