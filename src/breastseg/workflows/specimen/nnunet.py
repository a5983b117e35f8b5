"""nnU-Net v2 raw dataset layout for 2D specimen lamellae: read it as a lamella manifest, and write a manifest as one.

Layout (``DatasetXXX_Name/``): ``imagesTr/<case>_0000.nii.gz`` (CT), ``imagesTr/<case>_0001.nii.gz`` (PET),
``labelsTr/<case>.nii.gz`` and ``dataset.json`` with ``channel_names`` (``{"0": "CT", "1": "PET"}``), ``labels``
(``{"background": 0, "tumour": 1, "ignore": 2}``: nnU-Net's ignore label is our unknown) and ``file_ending``.
nnU-Net has no patient or tumour type fields; breastseg keeps them under ``dataset.json["breastseg"]``
(``patients``: case → patient id, ``tumour_types``: case → type; a missing type is NST). A dataset written
elsewhere has no such map: its patients then come from a pattern on the case names (``patient_pattern``, a regular
expression whose group ``patient`` — or first group — is the patient id), and without either the dataset is refused,
because every split of lamellae is by patient and a case taken for its own patient puts slices of one specimen on
both sides of a split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import read_image, write_image
from breastseg.io.atomic import write_json
from breastseg.io.nnunet import read_dataset_json, unknown_label


def patient_of(case: str, pattern: re.Pattern[str], where: Path) -> str:
    """The patient id a case name holds by ``pattern`` (its group ``patient``, or its first group)."""
    match = pattern.match(case)
    if match is None:
        raise InputError(f"{where}: case {case!r} does not match the patient pattern {pattern.pattern!r}")
    groups = match.groupdict()
    found = groups["patient"] if "patient" in groups else (match.group(1) if pattern.groups else None)
    if not found:
        raise InputError(f"patient pattern {pattern.pattern!r}: give it a group, e.g. '^(?P<patient>[^_]+)_'")
    return found


def nnunet_rows(root: str | Path, patient_pattern: str | None = None) -> list[dict[str, str]]:
    """Lamella manifest rows (absolute paths) of an nnU-Net raw dataset's training cases.

    Args:
        patient_pattern: a regular expression matched at the start of each case name whose group ``patient``
            (or first group) is the case's patient; used where ``dataset.json`` has no ``breastseg.patients`` map.

    Raises:
        InputError: no dataset.json, channels other than CT and PET, an unknown label other than 2, a case
            without its PET channel or label, or no way to tell the cases' patients.
    """
    root = Path(root)
    doc = read_dataset_json(root)
    channels = {str(k): str(v).upper() for k, v in doc.get("channel_names", doc.get("modality", {})).items()}
    if channels.get("0") != "CT" or channels.get("1") not in ("PET", "PT"):
        raise InputError(f"{root}/dataset.json: channel_names must be {{'0': 'CT', '1': 'PET'}}, got {channels}")
    unknown = unknown_label(doc)
    if unknown not in (None, 2):
        raise InputError(f"{root}/dataset.json: breastseg expects the unknown label to be 2, got {unknown}")
    ending = str(doc.get("file_ending", ".nii.gz"))
    meta = doc.get("breastseg", {})
    patients, types = meta.get("patients", {}), meta.get("tumour_types", {})
    try:
        pattern = re.compile(patient_pattern) if patient_pattern else None
    except re.error as exc:
        raise InputError(f"patient pattern {patient_pattern!r}: not a regular expression ({exc})") from exc
    rows = []
    for ct in sorted((root / "imagesTr").glob(f"*_0000{ending}")):
        case = ct.name[: -len(f"_0000{ending}")]
        if case in patients:
            patient = str(patients[case])
        elif pattern is not None:
            patient = patient_of(case, pattern, root)
        else:
            raise InputError(
                f"{root}/dataset.json: no patient for case {case!r} (breastseg.patients), and no --patient-pattern; "
                "lamellae are split by patient, so give a pattern such as '^(?P<patient>[^_]+)_' for names like "
                "P01_slice03"
            )
        pet = root / "imagesTr" / f"{case}_0001{ending}"
        label = root / "labelsTr" / f"{case}{ending}"
        for needed in (pet, label):
            if not needed.is_file():
                raise InputError(f"{root}: case {case} lacks {needed.relative_to(root)}")
        rows.append(
            {
                "patient_id": patient,
                "slice_id": case,
                "tumour_type": types.get(case, "NST"),
                "ct": str(ct.resolve()),
                "pet": str(pet.resolve()),
                "label": str(label.resolve()),
            }
        )
    if not rows:
        raise InputError(f"{root}/imagesTr: no cases ending in _0000{ending}")
    return rows


def nnunet_from_manifest(rows: Sequence[dict[str, str]], root: str | Path, name: str = "breastseg lamellae") -> Path:
    """Write lamella manifest rows (absolute paths, as :func:`read_manifest` gives) as an nnU-Net raw dataset."""
    root = Path(root)
    patients, types = {}, {}
    for row in rows:
        case = row["slice_id"]
        for channel, key in (("0000", "ct"), ("0001", "pet")):
            write_image(read_image(row[key]), root / "imagesTr" / f"{case}_{channel}.nii.gz")
        label: Image = read_image(row["label"])
        write_image(label, root / "labelsTr" / f"{case}.nii.gz")
        patients[case] = row["patient_id"]
        types[case] = row["tumour_type"]
    write_json(
        {
            "name": name,
            "channel_names": {"0": "CT", "1": "PET"},
            "labels": {"background": 0, "tumour": 1, "ignore": 2},
            "numTraining": len(rows),
            "file_ending": ".nii.gz",
            "breastseg": {"patients": patients, "tumour_types": types},
        },
        root / "dataset.json",
    )
    return root
