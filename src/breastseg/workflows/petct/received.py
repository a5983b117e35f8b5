"""A whole-body PET/CT study as DICOM arrives (a CT and a PET series, each in its own folder): its lesions
segmented by a trained network and measured, with SEG and SR for the PACS — and, given the patient's earlier study
measured the same way, the response between them.

Outputs in ``out_dir``: ``scan/`` (the scan folder the PET/CT commands read: ``ct`` and ``pet`` linking to the
series folders, ``lesions.nii.gz`` the network's mask on the PET grid), ``biomarkers.json``, ``lesions.csv``,
``mip.png`` (:func:`~breastseg.workflows.petct.scan.measure_scan`); with a prior study ``response/``
(:func:`~breastseg.workflows.petct.longitudinal.measure_response`). DICOM (``seg.dcm``, ``sr.dcm``) in
``dicom_out``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breastseg.errors import InputError
from breastseg.io import write_image
from breastseg.workflows.petct.inputs import Kind, read_channels
from breastseg.workflows.petct.longitudinal import ResponseAssessment, measure_response
from breastseg.workflows.petct.network import PetctModel, predict_scan
from breastseg.workflows.petct.scan import MeasuredScan, measure_scan

SCAN = "scan"
RESPONSE = "response"
LESIONS = "lesions.nii.gz"


@dataclass(frozen=True)
class ReceivedStudy:
    """What :func:`assess_received_study` measured: the scan's biomarkers (with what was written), the ensemble
    members used, and the response to the prior study (``None`` without one, or when it could not be assessed:
    ``response_problem`` says why — e.g. the prior was acquired after this study)."""

    measured: MeasuredScan
    members: tuple[str, ...]
    response: ResponseAssessment | None = None
    response_problem: str | None = None

    def summary(self) -> dict[str, Any]:
        """The job summary: the biomarkers a list shows, and the PERCIST category when assessed."""
        b = self.measured.biomarkers
        out: dict[str, Any] = {
            "lesion_count": b.lesion_count,
            "sul_peak": b.sul_peak,
            "suv_max": b.suv_max,
            "mtv_ml": b.mtv_ml,
            "tlg": b.tlg,
            "members": list(self.members),
        }
        if self.response is not None:
            out["percist"] = self.response.percist.category
            out["response_assessable"] = self.response.assessable
        if self.response_problem is not None:
            out["response_problem"] = self.response_problem
        return out


def scan_folder(out_dir: Path, ct_folder: Path, pet_folder: Path) -> Path:
    """``out_dir/scan`` with ``ct`` and ``pet`` linking to the received series folders (nothing copied)."""
    folder = out_dir / SCAN
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in (("ct", ct_folder), ("pet", pet_folder)):
        link = folder / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(target).resolve(), target_is_directory=True)
    return folder


def assess_received_study(
    ct_folder: Path,
    pet_folder: Path,
    model: PetctModel,
    out_dir: str | Path,
    dicom_out: str | Path,
    prior_scan: Path | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> ReceivedStudy:
    """Segment (the whole ensemble: a patient the service receives is not one the model trained on), measure and
    write (see the module docstring); ``prior_scan``: the ``scan/`` folder of the patient's earlier study, whose
    mask was made the same way, for the response (PERCIST; "not assessable" after a failed registration). A prior
    that cannot be compared (another patient, acquired later, no SUL) leaves no response, only its reason: this
    study's biomarkers, SEG and SR are delivered all the same."""
    say = progress or (lambda _step: None)
    out = Path(out_dir)
    folder = scan_folder(out, ct_folder, pet_folder)
    say("segmenting the lesions")
    channels = read_channels(folder, Kind.BASELINE, None)
    prediction = predict_scan(model, channels, device=device)
    write_image(prediction.mask, folder / LESIONS)
    say("measuring")
    measured = measure_scan(
        folder / "pet", folder / LESIONS, out, ct=folder / "ct", bone_from_ct_threshold=True, dicom_out=dicom_out
    )
    response, problem = None, None
    if prior_scan is not None:
        say("assessing the response to the prior study")
        try:
            response = measure_response(prior_scan, folder, out / RESPONSE, mask_name=LESIONS)
        except InputError as exc:  # not this patient's earlier scan, or no SUL: this study's biomarkers stand alone
            problem = str(exc)
    return ReceivedStudy(measured, prediction.members_used, response, problem)
