"""The nnU-Net v2 bridge: write PET/CT scan folders as an nnU-Net raw dataset, read nnU-Net's predictions back.

Users who train with nnU-Net itself keep every breastseg read-out: export, run ``nnUNetv2_plan_and_preprocess``
/ ``nnUNetv2_train`` / ``nnUNetv2_predict``, import the predictions, then ``petct biomarkers`` / ``response``
with ``--mask-name lesions_nnunet.nii.gz``.

**Channels** (:mod:`breastseg.workflows.petct.inputs`, the same images breastseg's own networks take; all on the
PET grid of the scan that is segmented), in autoPET's order by default, so that a model trained on autoPET's
nnU-Net datasets runs on an export and the other way round: baseline dataset ``_0000`` CT, ``_0001`` PET in SUVbw
clipped to [0, 5]; the follow-up dataset adds ``_0002`` baseline PET and ``_0003`` baseline lesion mask, registered
onto the follow-up. ``channel_order="pet-first"`` writes the order earlier breastseg versions wrote (PET ``_0000``,
CT ``_0001``), for models trained on such exports; ``dataset.json["breastseg"]["channel_order"]`` names the
order of every dataset written (a dataset without it is pet-first).

**Normalisation is set explicitly** in ``dataset.json``'s ``channel_names``: the CT channel is ``"CT"`` (nnU-Net's
CT normalisation: clip to the foreground's 0.5–99.5 percentiles, z-score with its statistics); the PET channels
and the mask are ``"noNorm"``. Naming the SUV channel ``"CT"`` — a known pitfall — would clip it to CT
percentiles; naming it anything else would z-score it per image and lose the SUV scale the clipping keeps.

``dataset.json["breastseg"]`` records each case's patient (nnU-Net has no such field; folds must keep a
patient's scans together) and source folder; ``splits_final.json`` is written beside it, to copy into
``nnUNet_preprocessed/DatasetXXX_Name/`` before training: the folds of ``petct train`` with the same ``--folds`` and
``--seed`` (patient-grouped, balanced by site), so nnU-Net's and breastseg's ensembles hold out the same patients
and ``petct evaluate`` compares them on equal terms.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from breastseg.errors import InputError
from breastseg.io import read_image, write_image
from breastseg.io.atomic import atomic_path, write_json
from breastseg.io.nnunet import read_dataset_json
from breastseg.workflows.petct.inputs import CHANNELS, DESCRIPTIONS, Kind, read_channels
from breastseg.workflows.petct.longitudinal import PatientScans, patient_folds

PREDICTION_NAME = "lesions_nnunet.nii.gz"
#: the export's channel orders: autoPET's (CT first; the default) and breastseg's earlier one (PET first)
CHANNEL_ORDERS = ("autopet", "pet-first")


def export_channels(kind: str, channel_order: str = "autopet") -> tuple[str, ...]:
    """The channel names of an export, ``_0000`` first (see the module docstring)."""
    if channel_order not in CHANNEL_ORDERS:
        raise InputError(f"channel order {channel_order!r}: use {' or '.join(CHANNEL_ORDERS)}")
    own = CHANNELS[Kind(kind)]
    if channel_order == "pet-first":
        return own
    return ("ct", "pet", *own[2:])


def nnunet_splits(
    patients: Sequence[PatientScans], cases: dict[str, str], folds: int, seed: int
) -> list[dict[str, list[str]]]:
    """``splits_final.json``: for each of :func:`patient_folds`' folds, the cases of its held-out patients as
    ``val`` and every other case as ``train`` (case → patient in ``cases``)."""
    out = []
    for held_out in patient_folds(patients, folds, seed):
        val = sorted(c for c, p in cases.items() if p in held_out)
        out.append({"train": sorted(c for c in cases if c not in val), "val": val})
    return out


def export_dataset(
    patients: Sequence[PatientScans],
    out_root: str | Path,
    kind: str = "baseline",
    mask_name: str = "lesions.nii.gz",
    folds: int = 5,
    seed: int = 0,
    channel_order: str = "autopet",
    pet_units: str | None = None,
) -> Path:
    """Write the baseline (2 channels) or follow-up (4 channels) nnU-Net raw dataset (see the module docstring);
    returns the dataset folder. ``folds`` and ``seed`` are ``petct train``'s (same values, same held-out patients);
    ``pet_units`` as :func:`~breastseg.workflows.petct.inputs.read_channels`."""
    if kind not in ("baseline", "followup"):
        raise InputError(f"dataset kind must be baseline or followup, got {kind!r}")
    order = export_channels(kind, channel_order)
    own = CHANNELS[Kind(kind)]
    if not patients:
        raise InputError("no patients to export")
    root = Path(out_root)
    images, labels = root / "imagesTr", root / "labelsTr"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    cases: dict[str, str] = {}
    sources: dict[str, str] = {}
    for p in patients:
        folder = p.scan(kind)
        case = f"{p.patient_id}_{kind}"
        scan = read_channels(folder, Kind(kind), mask_name, p.baseline, mask_name, pet_units)
        by_name = dict(zip(own, scan.images, strict=True))
        for c, channel in enumerate(order):
            image = by_name[channel]
            write_image(image.with_array(image.array.astype(np.float32)), images / f"{case}_{c:04d}.nii.gz")
        assert scan.lesions is not None
        label = scan.images[0].with_array(scan.lesions.astype(np.uint8), units="label")
        write_image(label, labels / f"{case}.nii.gz")
        cases[case] = p.patient_id
        sources[case] = str(folder.resolve())
    names = {str(i): "CT" if c == "ct" else "noNorm" for i, c in enumerate(order)}
    described = [DESCRIPTIONS[c] for c in order]
    doc = {
        "channel_names": names,
        "labels": {"background": 0, "lesion": 1},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
        "name": root.name,
        "description": f"breastseg PET/CT {kind} dataset (Moreau et al. 2022 inputs)",
        "breastseg": {
            "kind": kind,
            "channel_order": channel_order,
            "channels": described,
            "patients": cases,
            "sources": sources,
        },
    }
    write_json(doc, root / "dataset.json")
    if len(set(cases.values())) >= folds:
        write_json(nnunet_splits(patients, cases, folds, seed), root / "splits_final.json")
    return root


def import_predictions(predictions: str | Path, dataset: str | Path, name: str = PREDICTION_NAME) -> list[Path]:
    """Copy nnU-Net's ``<case>.nii.gz`` predictions into each case's source scan folder as ``name``, after
    checking each lies on that scan's PET grid (nnU-Net writes predictions on its input's geometry)."""
    pred_dir, root = Path(predictions), Path(dataset)
    doc = read_dataset_json(root)
    sources = doc.get("breastseg", {}).get("sources")
    if not sources:
        raise InputError(f"{root}/dataset.json: no breastseg sources; was it written by `petct nnunet-export`?")
    written = []
    for case, folder in sources.items():
        prediction = pred_dir / f"{case}.nii.gz"
        if not prediction.is_file():
            raise InputError(f"{pred_dir}: no prediction {prediction.name} for case {case}")
        reference = read_image(root / "labelsTr" / f"{case}.nii.gz")
        mask = read_image(prediction)
        if not mask.grid.same_as(reference.grid):
            raise InputError(f"{prediction}: not on case {case}'s PET grid (shape {mask.shape} vs {reference.shape})")
        target = Path(folder) / name
        with atomic_path(target) as tmp:
            shutil.copyfile(prediction, tmp)
        written.append(target)
    return written
