"""A predicted ultrasound lesion as DICOM for the PACS, per received image: a SEG with the lesion on that image
(when one was found; SCT "Lesion", as the study's masks do not say benign or malignant), a TID 1500 measurement
report — the lesion's area (SCT 42798000 "Area", mm² when the image states its pixel size, else pixels) on the
SEG's segment and the network's peak lesion probability (a breastseg code, no unit), or "no lesion found" — and the
overlay (the outline over the image with its legend) as a secondary capture in the image's study. An ultrasound
image has no frame of reference: SEG and overlay state an empty Patient Orientation, as DICOM asks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from breastseg.io.dicom_sc import write_secondary_capture
from breastseg.io.dicom_seg import write_image_seg
from breastseg.io.dicom_sr import PRIVATE_SCHEME, Finding, Measurement, ReportContext, write_measurement_report

#: the report's codes and units beyond :mod:`breastseg.io.dicom_sr`'s
ULTRASOUND_CODES: dict[str, Code] = {
    "area": codes.SCT.Area,
    "peak_probability": Code("peak-probability", PRIVATE_SCHEME, "Peak lesion probability"),
    "no_lesion": Code("no-lesion", PRIVATE_SCHEME, "No lesion found"),
    "mm2": Code("mm2", "UCUM", "square millimeter"),
    "pixels": Code("{pixels}", "UCUM", "pixels"),
    "ratio": Code("1", "UCUM", "no units"),
}


def seg_name(stem: str) -> str:
    """The SEG of image ``stem`` in the DICOM output folder."""
    return f"{stem}_seg.dcm"


def sr_name(stem: str) -> str:
    """The measurement report of image ``stem``."""
    return f"{stem}_sr.dcm"


def ultrasound_findings(area_px: int, area_mm2: float | None, peak_probability: float) -> list[Finding]:
    """The lesion's group on SEG segment 1 (area, peak probability), or a group without a segment saying that no
    lesion was found; both with the peak probability (0–1, the network's confidence that a lesion is there)."""
    probability = round(float(peak_probability), 4)
    peak = Measurement(ULTRASOUND_CODES["peak_probability"], probability, ULTRASOUND_CODES["ratio"])
    if area_px == 0:
        return [Finding("no lesion", ULTRASOUND_CODES["no_lesion"], None, [peak])]
    area = (
        Measurement(ULTRASOUND_CODES["area"], area_mm2, ULTRASOUND_CODES["mm2"])
        if area_mm2 is not None
        else Measurement(ULTRASOUND_CODES["area"], float(area_px), ULTRASOUND_CODES["pixels"])
    )
    return [Finding("lesion", codes.SCT.Lesion, 1, [area, peak])]


def overlay_name(stem: str) -> str:
    """The overlay's secondary capture of image ``stem``."""
    return f"{stem}_overlay.dcm"


def write_ultrasound_dicom_outputs(
    mask: np.ndarray,
    source: Dataset,
    overlay_png: str | Path,
    stem: str,
    out_dir: str | Path,
    area_mm2: float | None = None,
    peak_probability: float = 0.0,
) -> list[Path]:
    """Write ``<stem>_seg.dcm`` (``mask`` bool ``(rows, columns)`` on ``source``; none when empty),
    ``<stem>_sr.dcm`` (the area — ``area_mm2``, else the mask's pixels — and ``peak_probability``) and
    ``<stem>_overlay.dcm`` (the PNG ``overlay_png``) into ``out_dir``, each atomically; returns what was written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    mask = np.asarray(mask, bool)
    seg = None
    if mask.any():
        seg = write_image_seg({"lesion": mask}, source, out / seg_name(stem), series_description="breastseg lesion")
        written.append(seg)
    written.append(
        write_measurement_report(
            ultrasound_findings(int(mask.sum()), area_mm2, peak_probability),
            [source],
            out / sr_name(stem),
            seg=seg,
            context=ReportContext(procedure=codes.LN.USBreastReport),
            series_description="breastseg ultrasound lesion",
        )
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
