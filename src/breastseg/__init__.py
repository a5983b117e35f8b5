"""breastseg: breast tumour segmentation and the clinical read-outs built on it.

Conventions used everywhere in the package:

* Arrays are NumPy in ``(z, y, x)`` order for 3D and ``(y, x)`` for 2D; ``spacing`` follows the array order,
  in millimetres.
* ``origin`` (the centre of voxel 0) and ``direction`` are physical and follow DICOM / ITK: patient LPS
  coordinates ``(x, y, z)`` in mm, and a direction matrix whose column ``i`` is the unit vector of ITK index
  axis ``i`` (``i = 0`` is the array's last axis, x).

One call per command, named as the command and with its defaults, one module per workflow (each loads its
workflow, and torch, on first use)::

    import breastseg
    result = breastseg.specimen.assess("ct/", "pet/", "out/")           # breastseg specimen assess
    result.margin.status, result.margin.min_margin_mm                    # "negative", 1.42 (mm)
    scan = breastseg.petct.biomarkers("pet/", "lesions.nii.gz", "bio/")  # breastseg petct biomarkers
    breastseg.petct.response("baseline/", "followup/", "resp/")          # breastseg petct response
    breastseg.mri.segment("exam/", "seg/", model="mri.pt")               # breastseg mri segment
    breastseg.ultrasound.predict("scans/", "masks/")                     # breastseg ultrasound predict

The library functions behind them (``run_assessment``, ``measure_scan`` …, :data:`COMMANDS`) are importable from
here too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from breastseg._version import __version__
from breastseg.errors import BreastsegError, InputError, ModelError
from breastseg.image import Grid, Image
from breastseg.io import read_image, write_image

if TYPE_CHECKING:
    from breastseg import mri, petct, specimen, ultrasound
    from breastseg.evaluation.compare import compare_masks
    from breastseg.workflows.mri.pipeline import evaluate_cases, segment_to_folder
    from breastseg.workflows.petct.evaluate import evaluate_patients
    from breastseg.workflows.petct.longitudinal import measure_response
    from breastseg.workflows.petct.scan import measure_scan
    from breastseg.workflows.specimen.pipeline import run_assessment
    from breastseg.workflows.ultrasound.predict import predict_images

#: each command's library function → its module (imported on first use: ``import breastseg`` stays light)
COMMANDS = {
    "run_assessment": "breastseg.workflows.specimen.pipeline",  # specimen assess
    "measure_scan": "breastseg.workflows.petct.scan",  # petct biomarkers
    "measure_response": "breastseg.workflows.petct.longitudinal",  # petct response
    "evaluate_patients": "breastseg.workflows.petct.evaluate",  # petct evaluate
    "evaluate_cases": "breastseg.workflows.mri.pipeline",  # mri evaluate
    "segment_to_folder": "breastseg.workflows.mri.pipeline",  # mri segment (an exam read, a model loaded)
    "predict_images": "breastseg.workflows.ultrasound.predict",  # ultrasound predict (a model loaded)
    "compare_masks": "breastseg.evaluation.compare",  # evaluate seg
}

__all__ = [
    "BreastsegError",
    "Grid",
    "Image",
    "InputError",
    "ModelError",
    "__version__",
    "compare_masks",
    "evaluate_cases",
    "evaluate_patients",
    "measure_response",
    "measure_scan",
    "mri",
    "petct",
    "predict_images",
    "read_image",
    "run_assessment",
    "segment_to_folder",
    "specimen",
    "ultrasound",
    "write_image",
]


#: one module per workflow, its commands as functions (:mod:`breastseg.specimen`, :mod:`breastseg.petct` …)
WORKFLOWS = ("specimen", "petct", "mri", "ultrasound")


def __getattr__(name: str) -> Any:
    if name in WORKFLOWS:
        return importlib.import_module(f"breastseg.{name}")
    if name in COMMANDS:
        return getattr(importlib.import_module(COMMANDS[name]), name)
    raise AttributeError(f"module 'breastseg' has no attribute {name!r}")
