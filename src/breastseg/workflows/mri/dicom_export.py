"""A DCE-MRI tumour as DICOM for the PACS: a SEG with the tumour on the first post-contrast phase (the images the
mask was made on), a TID 1500 "Dynamic Contrast MR Measurement Report" and the report figure as a secondary
capture.

The report's tumour group (on the SEG's segment) holds the volume (SCT "Volume", ml), the longest diameter (SCT
"Long axis", mm) and the functional tumour volume (voxels enhancing ≥ 70 % at the first post-contrast phase, ml;
a breastseg code, there being no standard one), and the kinetic curve as a coded evaluation with the standard
values (DCM 130597 "Persistent delayed phase: Type 1 curve", 130598 plateau, 130599 washout). Without a tumour
there is no SEG (a segmentation needs a segment): the report says "no tumour found" in a group of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from breastseg.io.atomic import atomic_path
from breastseg.io.dicom import DicomSeries
from breastseg.io.dicom_names import SC_NAME, SEG_NAME, SR_NAME
from breastseg.io.dicom_sc import write_secondary_capture
from breastseg.io.dicom_seg import write_dicom_seg
from breastseg.io.dicom_sr import (
    CODES,
    PRIVATE_SCHEME,
    UNITS,
    Finding,
    Measurement,
    ReportContext,
    write_measurement_report,
)
from breastseg.workflows.mri.readouts import TumourReadout

#: the report's codes beyond :data:`breastseg.io.dicom_sr.CODES`
MRI_CODES: dict[str, Code] = {
    "longest_diameter": codes.SCT.LongAxis,
    "functional_volume": Code("ftv", PRIVATE_SCHEME, "Functional tumor volume"),
    "curve": Code("kinetic-curve", PRIVATE_SCHEME, "Kinetic curve type"),
    "no_tumour": Code("no-tumour", PRIVATE_SCHEME, "No tumour found"),
    "persistent": codes.DCM.PersistentDelayedPhaseType1Curve,
    "plateau": codes.DCM.PlateauDelayedPhaseType2Curve,
    "washout": codes.DCM.WashoutDelayedPhaseType3Curve,
}


def mri_findings(readout: TumourReadout, tumour_found: bool) -> list[Finding]:
    """The tumour's measurement group on SEG segment 1 (see the module docstring), or one group without a
    segment saying that no tumour was found."""
    if not tumour_found:
        return [Finding("no tumour", MRI_CODES["no_tumour"], None, [Measurement(CODES["volume"], 0.0, UNITS["ml"])])]
    measurements = [
        Measurement(CODES["volume"], readout.volume_ml, UNITS["ml"]),
        Measurement(MRI_CODES["longest_diameter"], readout.longest_diameter_mm, UNITS["mm"]),
    ]
    if readout.functional_volume_ml is not None:
        measurements.append(Measurement(MRI_CODES["functional_volume"], readout.functional_volume_ml, UNITS["ml"]))
    evaluations = [] if readout.curve_type is None else [(MRI_CODES["curve"], MRI_CODES[readout.curve_type])]
    return [Finding("tumour", CODES["neoplasm"], 1, measurements, evaluations)]


def write_mri_dicom_outputs(
    readout: TumourReadout, mask: np.ndarray, first_post: DicomSeries, figure: str | Path, out_dir: str | Path
) -> dict[str, Path]:
    """Write seg.dcm (when ``mask`` holds a tumour), sr.dcm and report.dcm (the PNG ``figure``) into ``out_dir``,
    replaced as a whole; ``mask`` bool ``(z, y, x)`` on ``first_post.image``'s grid."""
    mask = np.asarray(mask, bool)
    found = bool(mask.any())
    headers = list(first_post.headers)
    context = ReportContext(
        title=codes.cid7021.DynamicContrastMRMeasurementReport, procedure=codes.LN.BreastMrWoAndWContrastIv
    )
    out_dir = Path(out_dir)
    with atomic_path(out_dir, producer="mri dicom", dicom_outputs=(SEG_NAME, SR_NAME, SC_NAME)) as tmp:
        tmp.mkdir(parents=True)
        seg = write_dicom_seg({"tumour": mask}, first_post, tmp / SEG_NAME) if found else None
        write_measurement_report(
            mri_findings(readout, found),
            headers,
            tmp / SR_NAME,
            seg=seg,
            context=context,
            series_description="breastseg DCE-MRI tumour",
        )
        write_secondary_capture(figure, headers[0], tmp / SC_NAME, series_description="breastseg DCE-MRI report")
    paths = {"sr": out_dir / SR_NAME, "sc": out_dir / SC_NAME}
    if found:
        paths["seg"] = out_dir / SEG_NAME
    return paths
