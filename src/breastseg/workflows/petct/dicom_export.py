"""PET biomarkers as DICOM: a SEG with one segment per lesion on the source PET series and a TID 1500 PET
measurement report — per lesion and for the whole scan — with the standard codes (see :mod:`breastseg.io.dicom_sr`):
SULpeak (SUV in SUL units, derivation "Peak Value Within ROI", DCM 126031), SUVmax (SUVbw, "Maximum"), MTV
("Metabolic Volume", DCM 126032, ml), TLG ("Total Lesion Glycolysis", DCM 126033, g = SUVbw g/ml × ml) — and
each lesion's centre as an SCOORD3D point in the PET's frame of reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.sr.codedict import codes

from breastseg.image import Grid
from breastseg.io.atomic import atomic_path
from breastseg.io.dicom import DicomSeries
from breastseg.io.dicom_names import SEG_NAME, SR_NAME
from breastseg.io.dicom_seg import write_dicom_seg
from breastseg.io.dicom_sr import (
    CODES,
    UNITS,
    Finding,
    Measurement,
    Region3D,
    ReportContext,
    write_measurement_report,
)
from breastseg.masks import label_components
from breastseg.workflows.petct.biomarkers import Biomarkers


def _pet_measurements(sul_peak: float | None, suv_max: float | None, mtv_ml: float, tlg: float) -> list[Measurement]:
    out = []
    if sul_peak is not None:
        out.append(Measurement(CODES["suv"], sul_peak, UNITS["SUL"], derivation=CODES["peak"]))
    if suv_max is not None:
        out.append(Measurement(CODES["suv"], suv_max, UNITS["SUVbw"], derivation=CODES["maximum"]))
    out.append(Measurement(CODES["metabolic_volume"], mtv_ml, UNITS["ml"]))
    out.append(Measurement(CODES["total_lesion_glycolysis"], tlg, UNITS["g"]))
    return out


def petct_findings(
    result: Biomarkers, grid: Grid | None = None, frame_of_reference_uid: str | None = None
) -> list[Finding]:
    """The scan-level group (no segment; with the lesion count), one group per lesion (segment ``k`` = lesion
    ``k`` of ``result.lesions``) and — given the PET's grid and frame of reference — each lesion's centroid as an
    SCOORD3D point (LPS mm), tracked as ``lesion k centre``, so that a viewer can jump to it."""
    scan = _pet_measurements(result.sul_peak, result.suv_max, result.mtv_ml, result.tlg)
    scan.append(Measurement(CODES["lesion_count"], result.lesion_count, UNITS["count"]))
    findings = [Finding("scan", CODES["metastasis"], None, scan)]
    for k, lesion in enumerate(result.lesions, start=1):
        measurements = _pet_measurements(lesion.sul_peak, lesion.suv_max, lesion.volume_ml, lesion.tlg)
        findings.append(Finding(f"lesion {k} ({lesion.site})", codes.SCT.Lesion, k, measurements))
    if grid is not None and frame_of_reference_uid:
        for k, lesion in enumerate(result.lesions, start=1):
            centre = [round(float(v), 3) for v in grid.index_to_world(lesion.centroid_voxel)]
            point = Region3D("POINT", [centre], frame_of_reference_uid)
            findings.append(Finding(f"lesion {k} centre", codes.SCT.Lesion, None, region=point))
    return findings


def write_petct_dicom_outputs(
    result: Biomarkers, mask: np.ndarray, pet: DicomSeries, out_dir: str | Path
) -> dict[str, Path]:
    """Write seg.dcm (one segment per lesion; ``mask`` bool ``(z, y, x)`` on ``pet.image``'s grid, labelled as
    :func:`~breastseg.workflows.petct.biomarkers.compute_biomarkers` labels it) and sr.dcm into ``out_dir``."""
    labels, _ = label_components(np.asarray(mask, bool))
    masks = {f"lesion {k}": labels == lesion.label for k, lesion in enumerate(result.lesions, start=1)}
    out_dir = Path(out_dir)
    context = ReportContext(title=codes.cid7021.PETMeasurementReport, procedure=codes.LN.PETWholeBody)
    with atomic_path(out_dir, producer="petct dicom", dicom_outputs=(SEG_NAME, SR_NAME)) as tmp:
        tmp.mkdir(parents=True)
        seg = None
        if masks:
            seg = write_dicom_seg(masks, pet, tmp / SEG_NAME, series_description="breastseg lesions")
        write_measurement_report(
            petct_findings(result, pet.image.grid, str(pet.headers[0].get("FrameOfReferenceUID", "")) or None),
            list(pet.headers),
            tmp / SR_NAME,
            seg=seg,
            context=context,
            series_description="breastseg PET biomarkers",
        )
    paths = {"sr": out_dir / SR_NAME}
    if masks:
        paths["seg"] = out_dir / SEG_NAME
    return paths
