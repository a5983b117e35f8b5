"""The whole-body PET/CT workflow as Python, one call per command (``breastseg petct …``), with its defaults.

    import breastseg.petct
    scan = breastseg.petct.biomarkers("patient0/baseline/pet.nii.gz", "patient0/baseline/lesions.nii.gz", "bio0",
                                      pet_info="patient0/baseline/truth.json")
    scan.biomarkers.sul_peak, scan.biomarkers.mtv_ml          # SUL, ml
    response = breastseg.petct.response("patient0/baseline", "patient0/followup", "resp0")
    response.percist.category                                  # "PMR"

A PET already in SUV (autoPET's ``SUV.nii.gz``) needs only ``pet_units="SUVbw"``; ``patients`` may be a patients
table or an autoPET tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from breastseg.workflows.petct.evaluate import PetctEvaluation
    from breastseg.workflows.petct.longitudinal import ResponseAssessment
    from breastseg.workflows.petct.scan import MeasuredScan

__all__ = ["biomarkers", "evaluate", "response"]


def biomarkers(pet: str | Path, mask: str | Path, out: str | Path, **options: Any) -> MeasuredScan:
    """``breastseg petct biomarkers``: SULpeak (and SUVpeak), SUVmax/mean, MTV (ml), TLG, lesion count and the PET
    Bone/Liver Indices of a lesion mask, written into ``out``; ``options`` are
    :func:`~breastseg.workflows.petct.scan.measure_scan`'s (``pet_info``, ``pet_units``, ``liver_mask``,
    ``bone_mask``, ``ct`` with ``bone_from_ct_threshold``, ``peak_definition``, ``dicom_out``)."""
    from breastseg.workflows.petct.scan import measure_scan

    return measure_scan(pet, mask, out, **options)


def response(baseline: str | Path, followup: str | Path, out: str | Path, **options: Any) -> ResponseAssessment:
    """``breastseg petct response``: Δ% of every biomarker, new lesions and the PERCIST 1.0 category between two
    scan folders, written into ``out`` ("not assessable" after a failed registration, never a category);
    ``options`` are :func:`~breastseg.workflows.petct.longitudinal.measure_response`'s (``mask_name``,
    ``pet_units``, ``peak_definition``, ``tolerance_mm``, ``check_pairing``)."""
    from breastseg.workflows.petct.longitudinal import measure_response

    return measure_response(baseline, followup, out, **options)


def evaluate(
    patients: str | Path,
    predictions: str | Sequence[str],
    out: str | Path,
    *,
    reference: str = "lesions.nii.gz",
    timepoint: str = "both",
    prediction_dir: str | Path | None = None,
) -> PetctEvaluation:
    """``breastseg petct evaluate``: Dice, global Dice, the 50 % lesion rules, autoPET's volumes and the blob
    checks of each prediction file against the reference of every scan of ``patients`` (a patients table or an
    autoPET tree), written into ``out``."""
    from breastseg.workflows.petct.evaluate import evaluate_patients
    from breastseg.workflows.petct.longitudinal import read_patients

    names = [predictions] if isinstance(predictions, str) else list(predictions)
    return evaluate_patients(read_patients(patients), names, out, reference, timepoint, prediction_dir)
