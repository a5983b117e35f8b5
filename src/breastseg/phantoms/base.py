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
from breastseg.io.atomic import write_json
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
    return written
