"""A predicted ultrasound lesion as DICOM for the PACS, per received image: a SEG with the lesion on that image
(when one was found; SCT "Lesion", as the study's masks do not say benign or malignant) and the overlay — the
outline over the image, with its legend: area and peak probability — as a secondary capture in the image's study.
An ultrasound image has no frame of reference: both objects state an empty Patient Orientation, as DICOM asks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from breastseg.io.dicom_sc import write_secondary_capture
from breastseg.io.dicom_seg import write_image_seg


def seg_name(stem: str) -> str:
    """The SEG of image ``stem`` in the DICOM output folder."""
    return f"{stem}_seg.dcm"


def overlay_name(stem: str) -> str:
    """The overlay's secondary capture of image ``stem``."""
    return f"{stem}_overlay.dcm"


def write_ultrasound_dicom_outputs(
    mask: np.ndarray, source: Dataset, overlay_png: str | Path, stem: str, out_dir: str | Path
) -> list[Path]:
    """Write ``<stem>_seg.dcm`` (``mask`` bool ``(rows, columns)`` on ``source``; none when empty) and
    ``<stem>_overlay.dcm`` (the PNG ``overlay_png``) into ``out_dir``, each atomically; returns what was written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if np.asarray(mask, bool).any():
        written.append(
            write_image_seg({"lesion": mask}, source, out / seg_name(stem), series_description="breastseg lesion")
        )
    written.append(
        write_secondary_capture(
            overlay_png,
            source,
            out / overlay_name(stem),
            series_description="breastseg ultrasound overlay",
            patient_orientation=None,
        )
    )
    return written
