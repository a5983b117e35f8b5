"""2D breast-ultrasound datasets: BUSI's layout, a plain images/ + masks/ pair of folders, or nnU-Net v2 raw.

Every reader returns :class:`UltrasoundCase` records (paths, not pixels); :func:`load_case` reads one case as a
grayscale image ``(y, x)`` float32 in 0–255 and the union of its masks ``(y, x)`` bool. Layouts:

* **BUSI** (Al-Dhabyani et al. 2020): ``<root>/<class>/<name>.png`` with ``<name>_mask.png`` and, for multifocal
  lesions, ``<name>_mask_1.png``, ``<name>_mask_2.png``; classes ``benign``, ``malignant``, ``normal`` (all-zero
  masks). Also the layout ``<class>/images/`` + ``<class>/mask/``.
* **Folders**: ``images/<name>.<ext>`` and ``masks/<name>[_mask*].<ext>`` (PNG, JPEG, TIFF, BMP); no classes.
* **nnU-Net v2 raw**: ``imagesTr/<case>_0000.png``, ``labelsTr/<case>.png`` and ``dataset.json`` (one channel).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastseg.errors import InputError
from breastseg.io.nnunet import read_dataset_json
from breastseg.io.raster import read_label_pixels, read_pixels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
BUSI_CLASSES = ("benign", "malignant", "normal")
_MASK_NAME = re.compile(r"^(?P<stem>.+?)_mask(?:_\d+)?$")


@dataclass(frozen=True)
class UltrasoundCase:
    """One image and its mask files (their union is the lesion); ``label``: the image's class, if the dataset
    has classes (BUSI: benign, malignant, normal)."""

    case_id: str
    image_path: Path
    mask_paths: tuple[Path, ...]
    label: str | None = None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _pair_masks(images: Sequence[Path], masks: Sequence[Path], where: Path) -> dict[Path, tuple[Path, ...]]:
    """Each image's masks: same stem, or the stem followed by ``_mask`` / ``_mask_N``."""
    by_stem: dict[str, list[Path]] = {}
    for m in masks:
        match = _MASK_NAME.match(m.stem)
        by_stem.setdefault(match["stem"] if match else m.stem, []).append(m)
    paired = {}
    for image in images:
        found = sorted(by_stem.get(image.stem, []))
        if not found:
            raise InputError(f"{image}: no mask for this image in {where} (expected {image.stem}_mask.png)")
        paired[image] = tuple(found)
    return paired


def read_busi(root: str | Path) -> list[UltrasoundCase]:
    """Cases of a BUSI folder (either layout, see the module docstring), ordered by class then name."""
    root = Path(root)
    cases = []
    for label in BUSI_CLASSES:
        folder = root / label
        if not folder.is_dir():
            continue
        if (folder / "images").is_dir():
            images = _images_in(folder / "images")
            masks = _images_in(folder / "mask") if (folder / "mask").is_dir() else []
        else:
            files = _images_in(folder)
            masks = [p for p in files if _MASK_NAME.match(p.stem)]
            images = [p for p in files if not _MASK_NAME.match(p.stem)]
        for image, found in _pair_masks(images, masks, folder).items():
            cases.append(UltrasoundCase(image.stem, image, found, label))
    if not cases:
        raise InputError(f"{root}: no BUSI class folders ({', '.join(BUSI_CLASSES)}) with images")
    return cases


def read_folders(images_dir: str | Path, masks_dir: str | Path) -> list[UltrasoundCase]:
    """Cases of an images folder and a masks folder (masks named like their image, optionally ``_mask``)."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder")
    images = _images_in(images_dir)
    if not images:
        raise InputError(f"{images_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
    paired = _pair_masks(images, _images_in(masks_dir), masks_dir)
    return [UltrasoundCase(image.stem, image, found) for image, found in paired.items()]


def read_nnunet_2d(root: str | Path) -> list[UltrasoundCase]:
    """Training cases of a one-channel 2D nnU-Net v2 raw dataset (label > 0 is the lesion)."""
    root = Path(root)
    doc = read_dataset_json(root)
    channels = doc.get("channel_names", doc.get("modality", {}))
    if len(channels) != 1:
        raise InputError(f"{root}/dataset.json: ultrasound needs one channel, got {channels}")
    ending = str(doc.get("file_ending", ".png"))
    cases = []
    for image in sorted((root / "imagesTr").glob(f"*_0000{ending}")):
        case = image.name[: -len(f"_0000{ending}")]
        label = root / "labelsTr" / f"{case}{ending}"
        if not label.is_file():
            raise InputError(f"{root}: case {case} lacks labelsTr/{label.name}")
        cases.append(UltrasoundCase(case, image, (label,)))
    if not cases:
        raise InputError(f"{root}/imagesTr: no cases ending in _0000{ending}")
    return cases


def read_dataset(path: str | Path, masks: str | Path | None = None) -> list[UltrasoundCase]:
    """Any of the three layouts: ``path`` + ``masks`` folders, an nnU-Net raw dataset, or BUSI."""
    path = Path(path)
    if masks is not None:
        return read_folders(path, masks)
    if not path.is_dir():
        raise InputError(f"{path}: not a folder")
    if (path / "dataset.json").is_file():
        return read_nnunet_2d(path)
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return read_folders(path / "images", path / "masks")
    return read_busi(path)


def to_grayscale(pixels: np.ndarray) -> np.ndarray:
    """Grayscale float32 ``(y, x)``: a single channel as it is, colour (RGB/RGBA) as ITU-R 601 luma (PIL's)."""
    array = np.asarray(pixels, np.float32)
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return np.asarray(array[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32), np.float32)
    if array.ndim == 3 and array.shape[-1] in (1, 2):
        return np.asarray(array[..., 0], np.float32)
    raise InputError(f"not a 2D grayscale or colour image: shape {pixels.shape}")


def pixel_fingerprint(image: np.ndarray) -> str:
    """A short content hash of a grayscale image ``(y, x)`` (its shape and pixels rounded to 8 bits): the same
    picture gives the same fingerprint whatever file format or name it is stored under, so that a model can
    recognise its own training images (16 hex digits of SHA-256)."""
    pixels = np.clip(np.rint(np.asarray(image, np.float32)), 0, 255).astype(np.uint8)
    digest = hashlib.sha256(f"{pixels.shape[0]}x{pixels.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()[:16]


def case_fingerprints(cases: Sequence[UltrasoundCase]) -> list[str]:
    """:func:`pixel_fingerprint` of each case's image, sorted (the list a model file stores)."""
    return sorted({pixel_fingerprint(load_case(c)[0]) for c in cases})


def load_case(case: UltrasoundCase) -> tuple[np.ndarray, np.ndarray]:
    """The case's grayscale image ``(y, x)`` float32 and the union of its masks ``(y, x)`` bool."""
    try:
        image = to_grayscale(read_pixels(case.image_path))
    except InputError as exc:
        raise InputError(f"{case.image_path}: {exc}") from exc
    mask = np.zeros(image.shape, bool)
    for path in case.mask_paths:
        m = read_label_pixels(path)
        if m.shape != image.shape:
            raise InputError(
                f"{path}: mask is {m.shape[::-1]} (w × h) but its image {case.image_path.name} is {image.shape[::-1]}"
            )
        mask |= m > 0
    return image, mask
