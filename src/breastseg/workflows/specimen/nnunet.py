"""nnU-Net v2 raw dataset layout for 2D specimen lamellae: read it as a lamella manifest, and write a manifest as one.

Layout (``DatasetXXX_Name/``): ``imagesTr/<case>_0000.nii.gz`` (CT), ``imagesTr/<case>_0001.nii.gz`` (PET),
``labelsTr/<case>.nii.gz`` and ``dataset.json`` with ``channel_names`` (``{"0": "CT", "1": "PET"}``), ``labels``
(``{"background": 0, "tumour": 1, "ignore": 2}``: nnU-Net's ignore label is our unknown) and ``file_ending``.
nnU-Net has no patient or tumour type fields; breastseg keeps them under ``dataset.json["breastseg"]``
(``patients``: case → patient id, ``tumour_types``: case → type). Missing, a case is its own patient, NST.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import read_image, write_image
from breastseg.io.atomic import write_json
from breastseg.io.nnunet import read_dataset_json, unknown_label


def nnunet_rows(root: str | Path) -> list[dict[str, str]]:
    """Lamella manifest rows (absolute paths) of an nnU-Net raw dataset's training cases.

    Raises:
        InputError: no dataset.json, channels other than CT and PET, an unknown label other than 2, or a case
            without its PET channel or label.
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
    rows = []
    for ct in sorted((root / "imagesTr").glob(f"*_0000{ending}")):
        case = ct.name[: -len(f"_0000{ending}")]
        pet = root / "imagesTr" / f"{case}_0001{ending}"
        label = root / "labelsTr" / f"{case}{ending}"
        for needed in (pet, label):
            if not needed.is_file():
                raise InputError(f"{root}: case {case} lacks {needed.relative_to(root)}")
        rows.append(
            {
                "patient_id": patients.get(case, case),
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
