"""2D lamella training data: a manifest of slices, preprocessed the way the study preprocesses them.

A manifest is a CSV with one row per slice (or an nnU-Net v2 raw dataset folder, see
:mod:`breastseg.workflows.specimen.nnunet`): ``patient_id``, ``slice_id``, ``tumour_type`` (NST / ILC / DCIS) and
the paths (relative to the CSV) of ``ct`` (HU), ``pet`` (on the CT grid) and ``label`` (0 benign, 1 malignant,
2 unknown). ``breastseg phantom specimen --lamellae N`` writes one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastseg.errors import InputError
from breastseg.io import read_image
from breastseg.io.tables import read_csv_rows
from breastseg.masks import fill_holes
from breastseg.workflows.specimen.nnunet import nnunet_rows
from breastseg.workflows.specimen.preprocess import remove_background, remove_container, tissue_mask
from breastseg.workflows.specimen.threshold import ThresholdCase

REQUIRED_COLUMNS = ("patient_id", "slice_id", "tumour_type", "ct", "pet", "label")
UNKNOWN_LABEL = 2


def read_manifest(path: str | Path, patient_pattern: str | None = None) -> list[dict[str, str]]:
    """Rows of a lamella manifest (a CSV, or an nnU-Net raw dataset folder, whose patients come from its
    ``dataset.json`` or ``patient_pattern``: see :func:`~breastseg.workflows.specimen.nnunet.nnunet_rows`), paths
    absolute; checks the columns."""
    path = Path(path)
    if path.is_dir():
        return nnunet_rows(path, patient_pattern)
    rows = read_csv_rows(path, REQUIRED_COLUMNS, "manifest")
    for row in rows:
        for key in ("ct", "pet", "label"):
            row[key] = str((path.parent / row[key]).resolve())
    return rows


def preprocess_slice(
    ct: np.ndarray, pet: np.ndarray, label: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Container removal, Otsu tissue (largest component), background removal and label clean-up of a slice.

    Outside the tissue every pixel is benign; holes in the tumour label are filled (the study's rules).
    """
    from breastseg.image import Image

    ct_img = Image(np.asarray(ct, np.float32), tuple(spacing), units="HU")
    ct_img, _ = remove_container(ct_img)
    tissue, _ = tissue_mask(ct_img)
    ct_img, pet_img = remove_background(ct_img, ct_img.with_array(np.asarray(pet, np.float32)), tissue)
    lab = np.asarray(label).astype(np.uint8).copy()
    malignant = fill_holes(lab == 1)
    lab[malignant] = 1
    lab[~tissue] = 0
    return ct_img.array, pet_img.array, lab, tissue


@dataclass(frozen=True, eq=False)
class LamellaSlice:
    """One preprocessed 2D slice: CT (HU, air outside tissue), PET (SUL or as given, 0 outside), label, tissue."""

    patient_id: str
    slice_id: str
    tumour_type: str
    ct: np.ndarray
    pet: np.ndarray
    label: np.ndarray
    tissue: np.ndarray
    spacing: tuple[float, ...]


def read_lamellae(
    paths: Iterable[str | Path], tumour_types: Sequence[str] | None = None, patient_pattern: str | None = None
) -> list[LamellaSlice]:
    """Read and preprocess every slice of the manifests (optionally only some tumour types; ``patient_pattern``
    as in :func:`read_manifest`)."""
    out = []
    for manifest in paths:
        for row in read_manifest(manifest, patient_pattern):
            if tumour_types and row["tumour_type"] not in tumour_types:
                continue
            ct = read_image(row["ct"])
            pet = read_image(row["pet"])
            label = read_image(row["label"])
            if not (ct.grid.same_as(pet.grid) and ct.grid.same_as(label.grid)):
                raise InputError(f"{manifest}: slice {row['slice_id']}: CT, PET and label are not on one grid")
            c, p, lab, tissue = preprocess_slice(ct.array, pet.array, label.array, ct.spacing)
            out.append(
                LamellaSlice(row["patient_id"], row["slice_id"], row["tumour_type"], c, p, lab, tissue, ct.spacing)
            )
    if not out:
        raise InputError("no slices selected from the manifests")
    return out


def cases_from_slices(slices: Sequence[LamellaSlice]) -> list[ThresholdCase]:
    """Group slices into one threshold-fitting case per patient."""
    by_patient: dict[str, list[LamellaSlice]] = {}
    for s in slices:
        by_patient.setdefault(s.patient_id, []).append(s)
    return [
        ThresholdCase(
            patient_id=pid,
            ct=[s.ct for s in group],
            pet=[s.pet for s in group],
            label=[s.label for s in group],
            tissue=[s.tissue for s in group],
            unknown_label=UNKNOWN_LABEL,
        )
        for pid, group in sorted(by_patient.items())
    ]


def cases_from_manifests(
    paths: Iterable[str | Path], tumour_types: Sequence[str] | None = None, patient_pattern: str | None = None
) -> list[ThresholdCase]:
    """Read and preprocess every slice of the manifests, grouped into one case per patient."""
    return cases_from_slices(read_lamellae(paths, tumour_types, patient_pattern))
