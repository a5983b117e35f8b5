"""DICOM Structured Reports (TID 1500 Measurement Report, highdicom) of measurements on segments of a DICOM SEG.

A report is a list of :class:`Finding` s — one TID 1411 volumetric measurement group per segment of the SEG it
references (tracking identifier, finding type, measurements with units and derivations, coded qualitative
evaluations) — plus optional groups that reference no segment (TID 1501) and groups on a region given as
SCOORD3D points in the images' frame of reference (TID 1410: a point, or the line of a closest approach). What the
numbers mean is
said with the standard codes; :data:`CODES` names the ones the workflows use, each checked against pydicom's
copy of the DICOM code tables (PS3.16) by the tests:

* volume: SCT 118565006 "Volume", ml; a distance: DCM 121206 "Distance", mm;
* SUV: DCM 126400 "Standardized Uptake Value" with the unit saying which (CID 84: ``g/ml{SUVbw}``,
  ``g/ml{SUVlbm(Janma)}`` for SUL by Janmahasatian lean body mass) and the derivation from CID 7464 (SCT Maximum,
  SCT Mean, DCM 126031 "Peak Value Within ROI");
* PET measurements of CID 7466: DCM 126032 "Metabolic Volume" (ml), DCM 126033 "Total Lesion Glycolysis" (g:
  SUV g/ml × ml);
* margin status: SCT 372249001 "Tumor margin status" = SCT Positive / Negative, and the rule it was called by:
  DCM 122411 "Threshold Value" (mm; positive when the margin is at most this).

Names without a standard code (a specimen face called e.g. "deep-lateral") are coded in the private scheme
``99BRSEG`` — the DICOM way for local codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from breastseg._version import __version__
from breastseg.errors import InputError
from breastseg.io.atomic import atomic_path

#: coding scheme of breastseg's own codes (a "99" prefix marks a private scheme)
PRIVATE_SCHEME = "99BRSEG"

#: the codes the workflows report with (see the module docstring)
CODES: dict[str, Code] = {
    "volume": codes.SCT.Volume,
    "distance": codes.DCM.Distance,
    "suv": codes.DCM.StandardizedUptakeValue,
    "maximum": codes.SCT.Maximum,
    "minimum": codes.SCT.Minimum,
    "mean": codes.SCT.Mean,
    "peak": codes.cid7464.PeakValueWithinROI,
    "metabolic_volume": codes.cid7466.MetabolicVolume,
    "total_lesion_glycolysis": codes.cid7466.TotalLesionGlycolysis,
    "margin_status": codes.SCT.TumorMarginStatus,
    "threshold": codes.DCM.ThresholdValue,
    "positive": codes.SCT.Positive,
    "negative": codes.SCT.Negative,
    "surface": codes.SCT.Surface,
    "neoplasm": codes.SCT.Neoplasm,
    "metastasis": codes.SCT.NeoplasmMetastatic,
    "lesion_count": Code("lesion-count", PRIVATE_SCHEME, "Number of lesions"),
}

#: units (UCUM)
UNITS: dict[str, Code] = {
    "ml": Code("ml", "UCUM", "milliliter"),
    "mm": Code("mm", "UCUM", "millimeter"),
    "g": Code("g", "UCUM", "gram"),
    "count": Code("{count}", "UCUM", "count"),
    "SUVbw": codes.cid84.StandardizedUptakeValueBodyWeight,
    "SUL": codes.cid84.StandardizedUptakeValueLeanBodyMassJanma,
}

#: direction names with a SNOMED CT topographical modifier of the same name
_DIRECTIONS = frozenset(
    [
        "left",
        "right",
        "anterior",
        "posterior",
        "superior",
        "inferior",
        "lateral",
        "medial",
        "deep",
        "superficial",
        "cephalic",
        "caudal",
    ]
)


def direction_code(name: str) -> Code:
    """A direction (face) name as a SNOMED CT topographical modifier (``left`` → SCT 7771000), or a private code."""
    key = name.strip().lower()
    if key in _DIRECTIONS:
        return getattr(codes.SCT, key.capitalize())
    return Code(key.replace(" ", "-")[:16] or "unnamed", PRIVATE_SCHEME, name.strip() or "unnamed")


@dataclass(frozen=True)
class Measurement:
    """One numeric measurement (TID 1419 row): ``concept`` in ``unit``, optionally derived (maximum, mean, …) and
    located (``site``: a direction on ``site_location``, e.g. the face of a specimen surface), optionally with its
    uncertainty: ``lower_uncertainty`` / ``upper_uncertainty`` in ``unit``, the distances from ``value`` down to the
    lower and up to the upper end of its interval (TID 1419 "Range of lower / upper measurement uncertainty")."""

    concept: Code
    value: float
    unit: Code
    derivation: Code | None = None
    site_location: Code | None = None
    site: Code | None = None
    lower_uncertainty: float | None = None
    upper_uncertainty: float | None = None


@dataclass(frozen=True)
class Region3D:
    """A region in the patient coordinate system of a frame of reference (SCOORD3D): ``graphic_type`` ``POINT``,
    ``MULTIPOINT`` or ``POLYLINE``; ``points_mm`` the (x, y, z) LPS points in mm, as DICOM's Image Position
    (Patient) counts them."""

    graphic_type: str
    points_mm: Sequence[Sequence[float]]
    frame_of_reference_uid: str


@dataclass(frozen=True)
class Finding:
    """One measurement group: the SEG segment it describes (``segment_number``; ``None`` for a group that
    references no segment), what it is, its measurements and its coded evaluations (concept → value). A group
    with a ``region`` (and no segment) is a TID 1410 group on that SCOORD3D region — e.g. the line from a tumour's
    point closest to the surface to the surface."""

    tracking_id: str
    finding_type: Code
    segment_number: int | None
    measurements: Sequence[Measurement] = ()
    evaluations: Sequence[tuple[Code, Code]] = ()
    region: Region3D | None = None
    uid: str = field(default_factory=hd.UID)


def _measurement(m: Measurement) -> hd.sr.Measurement:
    sites = None
    if m.site_location is not None:
        sites = [hd.sr.FindingSite(anatomic_location=m.site_location, topographical_modifier=m.site)]
    properties = None
    if m.lower_uncertainty is not None or m.upper_uncertainty is not None:
        properties = hd.sr.MeasurementProperties(
            lower_measurement_uncertainty=m.lower_uncertainty, upper_measurement_uncertainty=m.upper_uncertainty
        )
    return hd.sr.Measurement(name=m.concept, value=float(m.value), unit=m.unit, derivation=m.derivation,
                             finding_sites=sites, properties=properties)  # fmt: skip


def _group(
    finding: Finding, seg: Dataset | None
) -> (
    hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    | hd.sr.MeasurementsAndQualitativeEvaluations
):
    tracking = hd.sr.TrackingIdentifier(uid=finding.uid, identifier=finding.tracking_id)
    measurements = [_measurement(m) for m in finding.measurements]
    evaluations = [hd.sr.QualitativeEvaluation(name, value) for name, value in finding.evaluations] or None
    algorithm = hd.sr.AlgorithmIdentification(name="breastseg", version=__version__)
    if finding.region is not None:
        if finding.segment_number is not None:
            raise InputError(f"finding {finding.tracking_id!r}: a group references a segment or a region, not both")
        region = hd.sr.ImageRegion3D(
            graphic_type=finding.region.graphic_type,
            graphic_data=np.asarray(finding.region.points_mm, dtype=float).reshape(-1, 3),
            frame_of_reference_uid=finding.region.frame_of_reference_uid,
        )
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            referenced_region=region,
            finding_type=finding.finding_type,
            algorithm_id=algorithm,
            measurements=measurements or None,
            qualitative_evaluations=evaluations,
        )
    if finding.segment_number is None:
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            finding_type=finding.finding_type,
            algorithm_id=algorithm,
            measurements=measurements,
            qualitative_evaluations=evaluations,
        )
    if seg is None:
        raise InputError(f"finding {finding.tracking_id!r} references a segment but no SEG was given")
    numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    if finding.segment_number not in numbers:
        raise InputError(f"finding {finding.tracking_id!r}: the SEG has no segment {finding.segment_number}")
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID,
            sop_instance_uid=seg.SOPInstanceUID,
            segment_number=finding.segment_number,
            source_series=hd.sr.SourceSeriesForSegmentation(seg.ReferencedSeriesSequence[0].SeriesInstanceUID),
        ),
        finding_type=finding.finding_type,
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=evaluations,
    )


@dataclass(frozen=True)
class ReportContext:
    """What the report is about: its title, the imaging procedure, and — for a specimen — the specimen."""

    title: Code = codes.cid7021.ImagingMeasurementReport
    procedure: Code = codes.LN.PETUnspecifiedBodyRegion
    specimen_uid: str | None = None
    specimen_id: str | None = None
    specimen_type: Code | None = None


def write_measurement_report(
    findings: Sequence[Finding],
    sources: Sequence[Dataset],
    path: str | Path,
    seg: Dataset | str | Path | None = None,
    context: ReportContext | None = None,
    series_number: int = 301,
    series_description: str = "breastseg measurements",
) -> Path:
    """Write a TID 1500 Comprehensive 3D SR of ``findings`` on the images ``sources`` (the SEG's source series).

    Args:
        findings: the measurement groups, in report order.
        sources: the source images' datasets (headers suffice); the report takes patient and study from them.
        seg: the DICOM SEG (dataset or file) whose segments the findings reference.

    Raises:
        InputError: no source images, or a finding whose segment is not in the SEG.
    """
    if not sources:
        raise InputError("a measurement report needs the source images it describes")
    ctx = context or ReportContext()
    seg_ds = pydicom.dcmread(seg) if isinstance(seg, str | Path) else seg
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="breastseg", manufacturer_name="breastseg", model_name=__version__
        ),
    )
    subject = None
    if ctx.specimen_uid is not None:
        subject = hd.sr.SubjectContext(
            subject_class=codes.DCM.Specimen,
            subject_class_specific_context=hd.sr.SubjectContextSpecimen(
                uid=ctx.specimen_uid, identifier=ctx.specimen_id, specimen_type=ctx.specimen_type
            ),
        )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device, subject_context=subject),
        procedure_reported=ctx.procedure,
        imaging_measurements=[_group(f, seg_ds) for f in findings],
        title=ctx.title,
    )
    evidence = [*sources, seg_ds] if seg_ds is not None else list(sources)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="breastseg",
        is_complete=True,
        series_description=series_description,
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        sr.save_as(tmp)
    return path
