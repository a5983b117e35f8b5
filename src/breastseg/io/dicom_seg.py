"""DICOM Segmentation objects (highdicom) for masks on a source DICOM series' own grid.

A mask array ``(z, y, x)`` on the grid :func:`breastseg.io.dicom.read_dicom_series` returned for the source series
is written as a binary SEG whose frame ``k`` references the source instance of sorted slice ``k`` — the series'
``files`` are in that order, so no frame is shifted or flipped whatever the slice order on disk. Each segment is
described with SNOMED CT codes (tumour: "Malignant neoplasm, primary"; specimen: "Tissue specimen"; lesion:
"Lesion"); numbered names (``"lesion 3"``) take the codes of their first word. Each segment carries its display
colour (:data:`SEGMENT_RGB`) as viewers read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import highdicom as hd
import numpy as np
from highdicom.sr.coding import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from breastseg._version import __version__
from breastseg.errors import InputError
from breastseg.io.atomic import atomic_path
from breastseg.io.dicom import DicomSeries

#: segment name → its Recommended Display CIELab Value, given as sRGB: the report figures' colours (tumour orange,
#: specimen blue; lesions red as the MIP outlines them), so that 3D Slicer and OHIF draw the SEG as breastseg does
SEGMENT_RGB: dict[str, tuple[int, int, int]] = {
    "tumour": (255, 140, 0),
    "specimen": (31, 119, 255),
    "lesion": (230, 0, 0),
}

#: segment name → (category, type) codes
SEGMENT_CODES: dict[str, tuple[CodedConcept, CodedConcept]] = {
    "tumour": (
        codes.SCT.MorphologicallyAbnormalStructure,
        CodedConcept("86049000", "SCT", "Malignant neoplasm, primary"),
    ),
    "specimen": (codes.SCT.Tissue, CodedConcept("119376003", "SCT", "Tissue specimen")),
    "lesion": (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion),
}


def write_dicom_seg(
    masks: Mapping[str, np.ndarray],
    source: DicomSeries,
    path: str | Path,
    series_number: int = 300,
    series_description: str = "breastseg segmentation",
) -> Path:
    """Write ``masks`` (name → bool ``(z, y, x)`` on ``source.image``'s grid) as one binary DICOM SEG.

    Raises:
        InputError: an unknown segment name, or a mask whose shape is not the source series'.
    """
    return _write_seg(masks, source.image.shape, list(source.headers), path, series_number, series_description)


def write_image_seg(
    masks: Mapping[str, np.ndarray],
    source: Dataset,
    path: str | Path,
    series_number: int = 300,
    series_description: str = "breastseg segmentation",
) -> Path:
    """Write ``masks`` (name → bool ``(rows, columns)``) on one single-frame 2D image ``source`` (an ultrasound
    image: no frame of reference, so the SEG states Patient Orientation, empty, as DICOM asks then).

    Raises:
        InputError: an unknown segment name, or a mask whose shape is not the image's.
    """
    shape = (1, int(source.Rows), int(source.Columns))
    frames = {name: np.asarray(mask)[None] for name, mask in masks.items()}
    return _write_seg(frames, shape, [source], path, series_number, series_description)


def _write_seg(
    masks: Mapping[str, np.ndarray],
    shape: tuple[int, ...],
    sources: list[Dataset],
    path: str | Path,
    series_number: int,
    series_description: str,
) -> Path:
    """One binary SEG of ``masks`` (name → bool array of ``shape``, frame ``k`` on ``sources[k]``)."""
    if not masks:
        raise InputError("a DICOM SEG needs at least one mask")
    labels = np.zeros(shape, np.uint8)
    descriptions = []
    for number, (name, mask) in enumerate(masks.items(), start=1):
        kind_name = name.split()[0] if name.strip() else name
        if kind_name not in SEGMENT_CODES:
            raise InputError(f"DICOM SEG: unknown segment {name!r}; known: {', '.join(SEGMENT_CODES)}")
        mask = np.asarray(mask, bool)
        if mask.shape != shape:
            raise InputError(f"DICOM SEG: mask {name!r} has shape {mask.shape}, the source series {shape}")
        labels[mask & (labels == 0)] = number  # a voxel in two masks keeps the first (segments as given)
        category, kind = SEGMENT_CODES[kind_name]
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    name="breastseg", version=__version__, family=codes.cid7162.ArtificialIntelligence
                ),
                display_color=hd.color.CIELabColor.from_rgb(*SEGMENT_RGB[kind_name]),
            )
        )
    overlap = sum(np.asarray(m, bool) for m in masks.values())
    if np.any(overlap > 1):
        # binary SEG frames may overlap: write one channel per segment instead of a label map
        pixels = np.stack([np.asarray(m, bool) for m in masks.values()], axis=-1).astype(np.uint8)
    else:
        pixels = labels
    first = sources[0]  # headers suffice (no pixel data): all a SEG needs of its sources
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="breastseg",
        manufacturer_model_name="breastseg",
        software_versions=__version__,
        device_serial_number=str(first.get("DeviceSerialNumber", "0")),
        series_description=series_description,
        omit_empty_frames=True,  # a frame without any segment is left out (a many-lesion SEG stays small)
    )
    if "FrameOfReferenceUID" not in first and "PatientOrientation" not in seg:
        seg.PatientOrientation = ""  # type 2C in General Image when no plane orientation is given
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return path
