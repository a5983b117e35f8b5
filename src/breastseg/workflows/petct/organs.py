"""Liver and bone masks from TotalSegmentator (optional), for the PET Liver and Bone Indices and PERCIST's liver
reference.

TotalSegmentator (Wasserthal et al. 2023, Apache-2.0 code; its own weight licences) is an optional extra
(``pip install TotalSegmentator``). breastseg **never downloads its weights**: TotalSegmentator's API fetches
missing weights on every call, so this module first checks that the weights of the chosen model are already in
TotalSegmentator's weights folder (``$TOTALSEG_WEIGHTS_PATH``, else ``$TOTALSEG_HOME_DIR/nnunet/results``, else
``~/.totalsegmentator/nnunet/results``) and refuses, naming the command that fetches them
(``totalseg_download_weights -t total_fast``), when they are not. Note that TotalSegmentator sends anonymous usage
statistics unless its configuration turns them off (its documentation says how).

The call: ``totalsegmentator(ct, None, ml=True, roi_subset=[liver + bones], fast=…, device=…)`` — one multilabel
image; its labels are named by TotalSegmentator's own ``class_map["total"]``. The bone mask joins the vertebrae,
ribs, sternum, skull, scapulae, clavicles, humeri, hips, sacrum and femurs. Both masks are resampled (nearest)
onto the PET grid.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.errors import InputError, ModelError
from breastseg.image import Image
from breastseg.io import read_image
from breastseg.workflows.petct.readout import mask_on_grid

#: TotalSegmentator's model ids of the "total" task (as its totalseg_download_weights lists them); 298 is the
#: 6 mm model that ``roi_subset`` uses to crop first
TASK_IDS = {"total": (291, 292, 293, 294, 295, 298), "total_fast": (297, 298)}
BONE_PREFIXES = ("vertebrae_", "rib_")
BONE_NAMES = frozenset(
    {
        "sternum",
        "skull",
        "sacrum",
        "hip_left",
        "hip_right",
        "femur_left",
        "femur_right",
        "humerus_left",
        "humerus_right",
        "scapula_left",
        "scapula_right",
        "clavicula_left",
        "clavicula_right",
    }
)


def weights_dir() -> Path:
    """Where TotalSegmentator keeps its weights (its own rule; see the module docstring)."""
    if os.environ.get("TOTALSEG_WEIGHTS_PATH"):
        return Path(os.environ["TOTALSEG_WEIGHTS_PATH"])
    home = os.environ.get("TOTALSEG_HOME_DIR")
    base = Path(home) if home else (Path("/tmp") if str(Path.home()) == "/" else Path.home()) / ".totalsegmentator"
    return base / "nnunet" / "results"


def missing_weights(fast: bool = True) -> list[int]:
    """The TotalSegmentator model ids needed and not present (``Dataset<id>_…`` folders in :func:`weights_dir`)."""
    root = weights_dir()
    task = "total_fast" if fast else "total"
    return [i for i in TASK_IDS[task] if not (root.is_dir() and any(root.glob(f"Dataset{i:03d}_*")))]


def is_bone(name: str) -> bool:
    return name.startswith(BONE_PREFIXES) or name in BONE_NAMES


def _api() -> tuple[Any, dict[int, str]]:
    try:
        api = importlib.import_module("totalsegmentator.python_api")
        class_map = importlib.import_module("totalsegmentator.map_to_binary").class_map["total"]
    except ImportError as exc:
        raise ModelError(
            "TotalSegmentator is not installed (pip install TotalSegmentator); or give --liver-mask / --bone-mask, "
            "or --bone-from-ct"
        ) from exc
    return api.totalsegmentator, {int(k): str(v) for k, v in class_map.items()}


def organ_masks(ct_path: str | Path, pet: Image, fast: bool = True, device: str = "cpu") -> dict[str, np.ndarray]:
    """``{"liver": mask, "bone": mask}`` on ``pet``'s grid from TotalSegmentator run on the CT at ``ct_path``.

    Raises:
        ModelError: TotalSegmentator is not installed, or its weights are not already present (never fetched).
        InputError: the CT cannot be read, or TotalSegmentator found no liver and no bone in it.
    """
    ct_path = Path(ct_path)
    run, class_map = _api()
    missing = missing_weights(fast)
    if missing:
        task = "total_fast" if fast else "total"
        raise ModelError(
            f"TotalSegmentator weights {missing} are not in {weights_dir()}; breastseg never downloads them — run "
            f"`totalseg_download_weights -t {task}` yourself (needs internet), or give the masks"
        )
    ct = read_image(ct_path, modality="CT")
    roi = ["liver", *sorted(name for name in class_map.values() if is_bone(name))]
    with tempfile.TemporaryDirectory(prefix="breastseg-totalseg-") as tmp:
        nifti_ct = Path(tmp) / "ct.nii.gz"
        if ct_path.is_dir() or not str(ct_path).endswith((".nii", ".nii.gz")):
            from breastseg.io import write_image

            write_image(ct, nifti_ct)  # TotalSegmentator reads NIfTI (or DICOM); one geometry path for all inputs
        else:
            nifti_ct = ct_path
        labels_img = run(nifti_ct, None, ml=True, roi_subset=roi, fast=fast, device=device, quiet=True)
        labels_path = Path(tmp) / "labels.nii.gz"
        import nibabel as nib

        nib.save(labels_img, str(labels_path))
        labels = read_image(labels_path)
    values = np.rint(labels.array).astype(np.int32)
    liver_ids = [k for k, v in class_map.items() if v == "liver"]
    bone_ids = [k for k, v in class_map.items() if is_bone(v)]
    liver = labels.with_array(np.isin(values, liver_ids).astype(np.uint8), units="label")
    bone = labels.with_array(np.isin(values, bone_ids).astype(np.uint8), units="label")
    if not liver.array.any() and not bone.array.any():
        raise InputError(f"{ct_path}: TotalSegmentator found neither liver nor bone in this CT")
    return {
        "liver": mask_on_grid(liver, pet, "liver mask", whole=False),
        "bone": mask_on_grid(bone, pet, "bone mask", whole=False),
    }
