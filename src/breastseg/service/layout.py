"""Where the service keeps things in its store folder, spelt once for the listener, the workers and the viewer.

``STORE/studies/<StudyInstanceUID>/``: the received instances of a study, one folder per series.
``STORE/results/<job id>/``: a job's outputs — a specimen's ``assessment/`` (result.json, masks, report.html,
figures), a whole-body PET/CT's ``petct/`` (biomarkers, MIP, lesion mask, response), a DCE-MRI's ``mri/``
(result.json, tumour mask, report.png), an ultrasound study's ``ultrasound/`` (per image a mask, an overlay and
its JSON; summary.json), and ``dicom/`` (SEG, SR, secondary capture).
"""

from __future__ import annotations

from pathlib import Path

ASSESSMENT = "assessment"
DICOM = "dicom"
#: a whole-body PET/CT job's results (biomarkers, MIP, lesion mask, response) beside dicom/
PETCT_RESULTS = "petct"
#: a DCE-MRI job's results (result.json, tumour.nii.gz, report.png)
MRI_RESULTS = "mri"
#: an ultrasound job's results (<image>_mask.png, <image>_overlay.png, <image>.json, summary.json)
ULTRASOUND_RESULTS = "ultrasound"


def study_folder(store: str | Path, study_uid: str) -> Path:
    """Where a study's files are filed."""
    return Path(store) / "studies" / study_uid


def result_folder(store: str | Path, job_id: int) -> Path:
    """Where a job's outputs go (``assessment/`` and ``dicom/`` inside)."""
    return Path(store) / "results" / str(job_id)


def assessment_folder(store: str | Path, job_id: int) -> Path:
    """A job's assessment: result.json, the masks, report.html and figures."""
    return result_folder(store, job_id) / ASSESSMENT
