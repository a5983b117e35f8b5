"""NumPy ``.npz`` with geometry: the fastest lossless container for intermediate arrays."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.atomic import atomic_path


def read_npz(path: Path) -> Image:
    """Read an ``.npz`` written by :func:`write_npz` (keys: array, spacing, origin, direction, modality, units)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"array", "spacing"} - set(z.files)
            if missing:
                raise InputError(
                    f"{path}: .npz lacks {sorted(missing)}; expected keys array, spacing[, origin, direction]"
                )
            return Image(
                z["array"],
                spacing=tuple(z["spacing"]),
                origin=tuple(z["origin"]) if "origin" in z.files else None,
                direction=z["direction"] if "direction" in z.files else None,
                modality=str(z["modality"]) or None if "modality" in z.files else None,
                units=str(z["units"]) or None if "units" in z.files else None,
            )
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read as .npz ({exc})") from exc


def write_npz(image: Image, path: Path) -> Path:
    """Write an image and its geometry to a compressed ``.npz``, atomically."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.savez_compressed(
            fh,
            array=image.array,
            spacing=np.asarray(image.spacing),
            origin=np.asarray(image.origin),
            direction=np.asarray(image.direction),
            modality=np.asarray(image.modality or ""),
            units=np.asarray(image.units or ""),
        )
    return path
