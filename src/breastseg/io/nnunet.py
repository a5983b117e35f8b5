"""nnU-Net v2 raw datasets (``DatasetXXX_Name/`` with ``imagesTr``, ``labelsTr`` and ``dataset.json``): the
parts every workflow's nnU-Net bridge reads the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from breastseg.errors import InputError

UNKNOWN_LABEL_NAMES = ("unknown", "ignore")


def read_dataset_json(root: Path) -> dict[str, Any]:
    path = root / "dataset.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{root}: no dataset.json; not an nnU-Net raw dataset") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    return doc


def unknown_label(doc: dict[str, Any]) -> int | None:
    """The label value declared as unknown/ignore in ``dataset.json`` (``None`` when there is none)."""
    labels = doc.get("labels", {})
    for name in UNKNOWN_LABEL_NAMES:
        if name in labels:
            return int(labels[name])
    return None
