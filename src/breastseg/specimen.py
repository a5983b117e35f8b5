"""The specimen workflow as Python, one call per command (``breastseg specimen …``), with the commands' defaults.

    import breastseg.specimen
    result = breastseg.specimen.assess("case0/ct.nii.gz", "case0/pet.nii.gz", "case0/assessment",
                                       pet_info="case0/truth.json")
    result.margin.status, result.margin.min_margin_mm        # "negative", 1.42 (mm)

Each function writes what its command writes and returns the command's typed result; torch is imported only by
the network method.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from breastseg.workflows.specimen.result import AssessmentResult

__all__ = ["assess"]


def assess(
    ct: str | Path,
    pet: str | Path,
    out: str | Path,
    *,
    pet_info: str | Path | None = None,
    pet_units: str | None = None,
    method: str = "threshold",
    model: str | Path | None = None,
    dicom_out: str | Path | None = None,
    overwrite: bool = False,
    **options: Any,
) -> AssessmentResult:
    """``breastseg specimen assess``: the margin status, minimum margin (mm), closest face, volumes (ml), masks and
    report of one micro-PET-CT specimen, written into ``out``.

    Args:
        ct, pet: DICOM folders or image files (NIfTI, NRRD, MHA); a PET file needs ``pet_info`` (its patient and
            injection data) or ``pet_units`` (``BQML``, ``SUVbw``, ``SUL``).
        method: ``threshold`` (the study's baseline; ``model`` a threshold JSON, default the packaged one) or
            ``resunet`` (``model`` a bundle, default the packaged demo bundle).
        dicom_out: also write DICOM SEG, SR and the report figure there (the CT must be DICOM).
        options: any other field of :class:`~breastseg.workflows.specimen.pipeline.AssessConfig`
            (``positive_margin_mm``, ``patient_id``, ``inference`` …).
    """
    from breastseg.errors import InputError
    from breastseg.suv import normalise_pet_units
    from breastseg.workflows.specimen.pipeline import AssessConfig, run_assessment
    from breastseg.workflows.specimen.preprocess import PetUnits

    if method not in ("threshold", "resunet"):
        raise InputError(f"method {method!r}: use threshold or resunet")
    config = AssessConfig(
        method="resunet" if method == "resunet" else "threshold",
        model=str(model) if model is not None else None,
        pet_units=PetUnits(normalise_pet_units(pet_units)) if pet_units else None,
        **options,
    )
    return run_assessment(ct, pet, out, config, pet_info, dicom_out=dicom_out, overwrite=overwrite)
