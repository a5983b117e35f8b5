"""The phantom framework: a generated case is a set of images with true geometry plus a truth file.

Every generator returns a :class:`Phantom`, deterministic for a given configuration (seed included);
:func:`write_phantom` writes each image as ``<name>.nii.gz`` and ``truth.json`` last, so a folder with a
``truth.json`` is complete. The truth records the configuration and the package version, so any phantom can
be regenerated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from breastseg._version import __version__
from breastseg.image import Image
from breastseg.io import write_image
from breastseg.io.atomic import write_json, write_marker
from breastseg.io.dicom_meta import PetInfo

TRUTH_SCHEMA_VERSION = 1


@dataclass(eq=False)
class Phantom:
    """A generated case.

    Attributes:
        kind: generator name (``"specimen"`` …).
        images: file stem → image (e.g. ``"ct"``, ``"pet"``, ``"tumour"``).
        truth: JSON-serialisable ground truth; numbers carry their unit in the key (``margin_mm``).
        config: the generator configuration (a dataclass), recorded in the truth file.
    """

    kind: str
    images: dict[str, Image]
    truth: dict[str, Any]
    config: Any = field(default=None)

    def truth_document(self) -> dict[str, Any]:
        is_instance = dataclasses.is_dataclass(self.config) and not isinstance(self.config, type)
        cfg = dataclasses.asdict(self.config) if is_instance else self.config
        return {
            "schema_version": TRUTH_SCHEMA_VERSION,
            "phantom": self.kind,
            "breastseg_version": __version__,
            "config": cfg,
            **self.truth,
        }


def phantom_patient(
    weight_kg: float,
    height_m: float,
    sex: str,
    activity_mbq_per_kg: float,
    injection_to_scan_min: float,
    scan_time: datetime,
    units: str,
    source: str,
) -> tuple[PetInfo, dict[str, Any]]:
    """A phantom's patient and injection: the :class:`PetInfo` that makes its PET SUV, and the truth file's
    ``"pet"`` section (readable back by ``--pet-info``), with the Bq/ml → SUVbw and → SUL factors."""
    from breastseg.suv import F18_HALF_LIFE_S, lean_body_mass_kg, pet_info_from_values, suv_scale_factor

    dose = activity_mbq_per_kg * weight_kg * 1e6
    injection = scan_time - timedelta(minutes=injection_to_scan_min)
    info = pet_info_from_values(
        weight_kg=weight_kg,
        injected_dose_bq=dose,
        injection_time=injection,
        scan_time=scan_time,
        height_m=height_m,
        sex=sex,
        source=source,
    )
    factor = suv_scale_factor(info, "bw")
    lbm = lean_body_mass_kg(weight_kg, height_m, sex)
    return info, {
        "units": units,
        "patient_weight_kg": weight_kg,
        "patient_height_m": height_m,
        "patient_sex": sex,
        "injected_dose_bq": dose,
        "half_life_s": F18_HALF_LIFE_S,
        "injection_datetime": injection.isoformat(),
        "scan_datetime": scan_time.isoformat(),
        "suvbw_per_bqml": factor,
        "lean_body_mass_kg": lbm,
        "sul_per_bqml": factor * lbm / weight_kg,
    }


def write_phantom(phantom: Phantom, out_dir: str | Path) -> dict[str, Path]:
    """Write every image as NIfTI and then ``truth.json``; returns name → path (``"truth"`` included)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {name: write_image(img, out / f"{name}.nii.gz") for name, img in phantom.images.items()}
    doc = phantom.truth_document()
    doc["files"] = {name: path.name for name, path in written.items()}
    written["truth"] = write_json(doc, out / "truth.json")
    write_marker(out, [p.name for p in written.values()], merge=True)
    return written


def write_pet_ct_dicom(
    phantom: Phantom,
    out_dir: str | Path,
    patient_name: str,
    ct_description: str,
    pet_description: str,
) -> dict[str, Path]:
    """Write a phantom's ``ct`` and ``pet`` images as DICOM series (``out_dir/ct``, ``out_dir/pet``) of one study.

    The PET carries the tags SUV conversion reads, from ``phantom.truth["pet"]``: Units, DecayCorrection START,
    CorrectedImage with ATTN and DECY, patient weight/size/sex and the radiopharmaceutical sequence with dose,
    half-life and start.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    from breastseg.io import StudyIdentity, write_dicom_series

    out = Path(out_dir)
    pet_truth = phantom.truth["pet"]
    injection = datetime.fromisoformat(pet_truth["injection_datetime"])
    scan = datetime.fromisoformat(pet_truth["scan_datetime"])
    # an accession number as a RIS would give one, from the scan's time (so deterministic by seed)
    study = StudyIdentity(patient_name=patient_name, study_datetime=scan, accession_number=f"BS{scan:%y%m%d%H%M}")
    ct_files = write_dicom_series(
        phantom.images["ct"], out / "ct", modality="CT", study=study, series_number=1, series_description=ct_description
    )
    extra = Dataset()
    extra.PatientWeight = f"{pet_truth['patient_weight_kg']:.3f}"
    extra.PatientSize = f"{pet_truth['patient_height_m']:.3f}"
    extra.PatientSex = pet_truth["patient_sex"]
    extra.Units = "BQML" if pet_truth["units"] == "BQML" else "GML"
    extra.DecayCorrection = "START"
    extra.CorrectedImage = ["ATTN", "DECY", "SCAT"]
    extra.SeriesDate = extra.AcquisitionDate = scan.strftime("%Y%m%d")
    extra.SeriesTime = extra.AcquisitionTime = scan.strftime("%H%M%S")
    item = Dataset()
    item.Radiopharmaceutical = "Fluorodeoxyglucose"
    item.RadionuclideTotalDose = f"{pet_truth['injected_dose_bq']:.6g}"
    item.RadionuclideHalfLife = f"{pet_truth['half_life_s']:.6g}"
    item.RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S")
    item.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S")
    extra.RadiopharmaceuticalInformationSequence = DicomSequence([item])
    pet_files = write_dicom_series(
        phantom.images["pet"],
        out / "pet",
        modality="PT",
        study=study,
        series_number=2,
        series_description=pet_description,
        extra=extra,
    )
    return {"ct": ct_files[0].parent, "pet": pet_files[0].parent}
