"""A specimen assessment as DICOM: SEG (tumour, specimen) on the source CT series, a TID 1500 SR of the margin
read-out, and a secondary capture of the report figure — what goes back to the PACS.

The SR has one volumetric group per segment. Tumour: volume (ml), the minimum margin as a minimum distance (mm)
whose finding site is the specimen surface at the closest face and whose interval (``margin_interval_mm``) is its
range of lower / upper measurement uncertainty, SUL max and mean, the margin status (positive / negative) as a
coded evaluation and the threshold it was called by (mm). Specimen: volume (ml). Then a group of the minimum
margin at each face (finding site: the surface at that face), and the closest approach as an SCOORD3D line in
the CT's frame of reference, so that a viewer can show where the margin is closest. A specimen that is not
assessable gets an SR alone, its margin status "Undetermined" (:func:`write_not_assessable_sr`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from breastseg.io.atomic import atomic_path
from breastseg.io.dicom import DicomSeries
from breastseg.io.dicom_names import SC_NAME, SEG_NAME, SR_NAME
from breastseg.io.dicom_sc import write_secondary_capture
from breastseg.io.dicom_seg import write_dicom_seg
from breastseg.io.dicom_sr import (
    CODES,
    UNITS,
    Finding,
    Measurement,
    Region3D,
    ReportContext,
    direction_code,
    write_measurement_report,
)

#: file names in a ``--dicom-out`` folder


def specimen_findings(result: Mapping[str, Any], frame_of_reference_uid: str | None = None) -> list[Finding]:
    """The SR groups of a specimen result (``result.json``'s keys): tumour = segment 1, specimen = segment 2, the
    minimum margin at each face of the specimen (a group of its own), and — given the CT's frame of reference —
    the closest approach as a two-point SCOORD3D line from the tumour voxel nearest the surface to the outside
    voxel it faces (LPS mm: ``closest_point_mm`` → ``surface_point_mm``)."""
    tumour: list[Measurement] = [Measurement(CODES["volume"], result["tumour_volume_ml"], UNITS["ml"])]
    if result.get("min_margin_mm") is not None:
        face = result.get("closest_face")
        margin = float(result["min_margin_mm"])
        low, high = result.get("margin_interval_mm") or (None, None)
        tumour.append(
            Measurement(
                CODES["distance"],
                margin,
                UNITS["mm"],
                derivation=CODES["minimum"],
                site_location=CODES["surface"],
                site=direction_code(face) if face else None,
                lower_uncertainty=None if low is None else round(margin - float(low), 4),
                upper_uncertainty=None if high is None else round(float(high) - margin, 4),
            )
        )
    for key, derivation in (("tumour_sul_max", "maximum"), ("tumour_sul_mean", "mean")):
        if result.get(key) is not None:
            tumour.append(Measurement(CODES["suv"], result[key], UNITS["SUL"], derivation=CODES[derivation]))
    if result.get("positive_margin_threshold_mm") is not None:
        tumour.append(Measurement(CODES["threshold"], float(result["positive_margin_threshold_mm"]), UNITS["mm"]))
    status = CODES["positive"] if result["margin_status"] == "positive" else CODES["negative"]
    findings = [
        Finding("tumour", CODES["neoplasm"], 1, tumour, [(CODES["margin_status"], status)]),
        Finding(
            "specimen",
            codes.SCT.Tissue,
            2,
            [Measurement(CODES["volume"], result["specimen_volume_ml"], UNITS["ml"])],
        ),
    ]
    on_faces = {face: mm for face, mm in (result.get("per_face_margin_mm") or {}).items() if mm is not None}
    faces = [
        Measurement(
            CODES["distance"],
            float(mm),
            UNITS["mm"],
            derivation=CODES["minimum"],
            site_location=CODES["surface"],
            site=direction_code(face),
        )
        for face, mm in on_faces.items()
    ]
    if faces:
        findings.append(Finding("margin per face", CODES["surface"], None, faces))
    tumour_point, surface_point = result.get("closest_point_mm"), result.get("surface_point_mm")
    if frame_of_reference_uid and tumour_point is not None and surface_point is not None:
        line = Region3D("POLYLINE", [tumour_point, surface_point], frame_of_reference_uid)
        findings.append(Finding("closest approach", CODES["neoplasm"], None, region=line))
    return findings


def write_specimen_dicom_outputs(
    result: Mapping[str, Any],
    tumour: np.ndarray,
    specimen: np.ndarray,
    ct: DicomSeries,
    figure: str | Path,
    out_dir: str | Path,
) -> dict[str, Path]:
    """Write seg.dcm, sr.dcm and report.dcm into ``out_dir`` (replaced as a whole, atomically).

    ``tumour`` and ``specimen`` are bool ``(z, y, x)`` masks on ``ct.image``'s grid.
    """
    out_dir = Path(out_dir)
    headers = list(ct.headers)
    context = _context(headers)
    with atomic_path(out_dir, producer="specimen dicom", dicom_outputs=(SEG_NAME, SR_NAME, SC_NAME)) as tmp:
        tmp.mkdir(parents=True)
        seg = write_dicom_seg({"tumour": tumour, "specimen": specimen}, ct, tmp / SEG_NAME)
        write_measurement_report(
            specimen_findings(result, str(headers[0].get("FrameOfReferenceUID", "")) or None),
            headers,
            tmp / SR_NAME,
            seg=seg,
            context=context,
            series_description="breastseg specimen margin",
        )
        write_secondary_capture(figure, headers[0], tmp / SC_NAME, series_description="breastseg margin report")
    return {"seg": out_dir / SEG_NAME, "sr": out_dir / SR_NAME, "sc": out_dir / SC_NAME}


def _context(headers: list[Any]) -> ReportContext:
    study_uid = str(headers[0].StudyInstanceUID)
    return ReportContext(
        procedure=codes.LN.PETUnspecifiedBodyRegion,
        specimen_uid=generate_uid(entropy_srcs=[study_uid, "breastseg specimen"]),  # the same for every run
        specimen_id=str(headers[0].get("AccessionNumber", "") or headers[0].get("PatientID", "specimen")),
        specimen_type=codes.SCT.SpecimenFromBreastObtainedByExcision,
    )


def write_not_assessable_sr(ct: DicomSeries, out_dir: str | Path) -> Path:
    """Write sr.dcm alone into ``out_dir`` for a specimen that could not be assessed: one specimen-level group whose
    margin status is SCT 373068000 "Undetermined" — the PACS shows that no margin was read, and why there is no
    SEG. An earlier run's SEG and report figure there are removed (they would contradict it)."""
    out_dir = Path(out_dir)
    headers = list(ct.headers)
    finding = Finding("specimen", codes.SCT.Tissue, None, (), [(CODES["margin_status"], codes.SCT.Undetermined)])
    with atomic_path(out_dir, producer="specimen dicom", dicom_outputs=(SEG_NAME, SR_NAME, SC_NAME)) as tmp:
        tmp.mkdir(parents=True)
        write_measurement_report(
            [finding],
            headers,
            tmp / SR_NAME,
            context=_context(headers),
            series_description="breastseg specimen margin: not assessable",
        )
    return out_dir / SR_NAME
