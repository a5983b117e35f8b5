"""Prediction and evaluation of ultrasound images with trained models, one model load for a whole folder.

Reading: PNG/JPEG/TIFF/BMP (no pixel size) or DICOM (pixel size from the first region of the Sequence of
Ultrasound Regions, physical units cm, or from Pixel Spacing). Each prediction writes ``<name>_mask.png``
(0/255), ``<name>_overlay.png`` (the image with the mask's outline over a legend strip) and ``<name>.json``
(lesion area in pixels and, when the pixel size is known, mm²). Evaluation scores predictions against reference
masks with the cross-validation read-outs (:mod:`breastseg.workflows.ultrasound.crossval`) and compares models pairwise
(Wilcoxon signed-rank on the per-image metrics of lesion images, as the study compared FCN and DeepLabV3).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.evaluation.metrics import dice
from breastseg.evaluation.stats import wilcoxon
from breastseg.io.atomic import atomic_path, write_json
from breastseg.io.dicom import is_dicom_file
from breastseg.io.raster import read_pixels
from breastseg.sanity import check_not_constant
from breastseg.workflows.ultrasound.crossval import ImageScore, predictions, score_image
from breastseg.workflows.ultrasound.dataset import (
    IMAGE_SUFFIXES,
    UltrasoundCase,
    load_case,
    pixel_fingerprint,
    to_grayscale,
)
from breastseg.workflows.ultrasound.model import UltrasoundModel, predict_probability
from breastseg.workflows.ultrasound.postprocess import MaskRule

if TYPE_CHECKING:
    import torch

DICOM_SUFFIXES = (".dcm", ".dicom")
_CM_UNITS = 3  # DICOM Physical Units X/Y Direction: 3 = cm


@dataclass(frozen=True)
class UltrasoundImage:
    """A grayscale ultrasound image ``(y, x)`` float32 0–255 and its pixel size ``(dy, dx)`` mm, if known;
    ``dicom``: a DICOM image's header (no pixel data), what its SEG and secondary capture reference."""

    path: Path
    pixels: np.ndarray
    spacing_mm: tuple[float, float] | None
    dicom: Any = None


def _dicom_spacing(ds: Any) -> tuple[float, float] | None:
    regions = getattr(ds, "SequenceOfUltrasoundRegions", None)
    if regions:
        r = regions[0]
        if (
            getattr(r, "PhysicalUnitsXDirection", None) == _CM_UNITS
            and getattr(r, "PhysicalUnitsYDirection", None) == _CM_UNITS
        ):
            return (abs(float(r.PhysicalDeltaY)) * 10.0, abs(float(r.PhysicalDeltaX)) * 10.0)
    spacing = getattr(ds, "PixelSpacing", None)
    return (float(spacing[0]), float(spacing[1])) if spacing else None


def read_ultrasound_image(path: str | Path) -> UltrasoundImage:
    """Read one 2D ultrasound image (see the module docstring); colour becomes luma."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES or is_dicom_file(path):
        import pydicom

        try:
            ds = pydicom.dcmread(path)
            pixels = np.asarray(ds.pixel_array)
        except Exception as exc:  # pydicom raises many types for foreign or broken files
            raise InputError(f"{path}: cannot read as DICOM ({exc})") from exc
        if pixels.ndim == 3 and getattr(ds, "SamplesPerPixel", 1) == 1:
            raise InputError(f"{path}: a multi-frame ultrasound; export the frame to predict")
        gray = to_grayscale(pixels)
        check_not_constant(gray, str(path))
        if gray.max() > 255:
            gray = gray / gray.max() * 255.0
        if "PixelData" in ds:  # the header is what the outputs reference; the pixels were read
            del ds.PixelData
        return UltrasoundImage(path, gray.astype(np.float32), _dicom_spacing(ds), ds)
    pixels = read_pixels(path)  # names the file when it cannot be read
    try:
        gray = to_grayscale(pixels)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    check_not_constant(gray, str(path))  # a blank frame has no lesion to find
    return UltrasoundImage(path, gray, None)


def list_images(path: str | Path) -> list[Path]:
    """One image file, or every image (PNG, JPEG, TIFF, BMP, DICOM) in a folder, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder")
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in (*IMAGE_SUFFIXES, *DICOM_SUFFIXES))
    if not found:
        raise InputError(f"{path}: no images ({', '.join((*IMAGE_SUFFIXES, *DICOM_SUFFIXES))})")
    return found


#: outline colours of the overlays: the prediction orange (the report figures' tumour colour), the reference green
PREDICTION_RGB = (255, 140, 0)
REFERENCE_RGB = (0, 220, 0)


def overlay_rgb(pixels: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = PREDICTION_RGB) -> np.ndarray:
    """The grayscale image as RGB with the mask's one-pixel outline drawn in ``colour``."""
    rgb = np.repeat(np.clip(pixels, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    outline = mask & ~ndimage.binary_erosion(mask)
    rgb[outline] = colour
    return rgb


def _save_png(array: np.ndarray, path: Path, description: str | None = None) -> Path:
    info = None
    if description is not None:
        info = PngInfo()
        info.add_text("Description", description)
    with atomic_path(path) as tmp:
        PILImage.fromarray(array).save(tmp, format="PNG", pnginfo=info)
    return path


def dice_text(prediction: np.ndarray, reference: np.ndarray) -> str:
    """The overlay's score: Dice to 2 decimals, or on an image without a lesion the false-positive area (px)."""
    if not reference.any():
        return f"no lesion in the reference; predicted {int(prediction.sum())} px"
    return f"Dice {dice(prediction, reference):.2f}"


def _legend_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib: it has ², µ and ·, which PIL's default font draws as boxes)."""
    from matplotlib import font_manager

    try:
        return ImageFont.truetype(font_manager.findfont("DejaVu Sans", fallback_to_default=True), size)
    except OSError:
        return ImageFont.load_default(size=size)


def legend_overlay(
    pixels: np.ndarray, prediction: np.ndarray, reference: np.ndarray | None = None, note: str = ""
) -> tuple[np.ndarray, str]:
    """The image with the prediction outlined (orange) and, given, the reference (green), over a legend strip
    below it that names the colours and, with a reference, gives the Dice (:func:`dice_text`); ``note`` is added
    (e.g. the area). The image's own pixels keep their size and place (rows above the strip). Returns the RGB
    array and the legend's text (also written as the PNG's Description)."""
    rgb = overlay_rgb(pixels, prediction, PREDICTION_RGB)
    parts = ["prediction: orange"]
    if reference is not None:
        reference = np.asarray(reference, bool)
        rgb[reference & ~ndimage.binary_erosion(reference)] = REFERENCE_RGB
        parts += ["reference: green", dice_text(np.asarray(prediction, bool), reference)]
    if note:
        parts.append(note)
    text = " · ".join(parts)
    width = rgb.shape[1]
    size = int(np.clip(width / 40, 10, 18))
    strip = PILImage.new("RGB", (width, int(size * 1.9)), (0, 0, 0))
    draw = ImageDraw.Draw(strip)
    font = _legend_font(size)
    x, y = 4, int(size * 0.4)
    swatches = [PREDICTION_RGB] + ([REFERENCE_RGB] if reference is not None else [])
    for i, part in enumerate(parts):
        if i < len(swatches):
            draw.line([(x, y + size // 2), (x + size, y + size // 2)], fill=swatches[i], width=3)
            x += size + 3
        draw.text((x, y), part, fill=(255, 255, 255), font=font)
        x += int(draw.textlength(part, font=font)) + size
    return np.concatenate([rgb, np.asarray(strip)], axis=0), text


@dataclass(frozen=True)
class ImagePrediction:
    """One image's predicted lesion (``<stem>.json`` is :meth:`to_json`).

    Attributes:
        image: the image's path.
        area_px: the mask's pixels; ``area_mm2`` its area when the image states its pixel spacing (``(row,
            column)`` mm, ``pixel_spacing_mm``), else ``None``.
        mask, overlay: the written PNGs' names, beside the JSON.
        peak_probability: the network's highest lesion probability anywhere in the image, 0–1 — its confidence
            that a lesion is there (not calibrated: read it against the cross-validation's normal images).
    """

    image: str
    area_px: int
    pixel_spacing_mm: tuple[float, float] | None
    area_mm2: float | None
    mask: str
    overlay: str
    peak_probability: float = 0.0

    @property
    def lesion_found(self) -> bool:
        return self.area_px > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "lesion_found": self.lesion_found,
            "area_px": self.area_px,
            "pixel_spacing_mm": None if self.pixel_spacing_mm is None else list(self.pixel_spacing_mm),
            "area_mm2": self.area_mm2,
            "peak_probability": round(self.peak_probability, 4),
            "mask": self.mask,
            "overlay": self.overlay,
        }


def predict_images(
    paths: Sequence[Path],
    model: UltrasoundModel,
    out_dir: str | Path,
    rule: MaskRule | None = None,
    progress: Callable[[int, int], None] | None = None,
    flip: bool = True,
    device: str | torch.device = "cpu",
    dicom_out: str | Path | None = None,
) -> list[ImagePrediction]:
    """Predict every image with one loaded model and write mask, overlay and JSON per image (see module);
    ``rule``: probability → mask (default: the model's, chosen on its cross-validation); ``flip``: left-right
    test-time augmentation (:func:`~breastseg.workflows.ultrasound.model.predict_probability`); ``device``: where
    the network runs; ``dicom_out``: where each DICOM image's SEG, SR and overlay secondary capture go
    (:mod:`breastseg.workflows.ultrasound.dicom_export`; images read from PNG or JPEG have no study to go to)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    network = model.network(device)
    chosen = rule if rule is not None else model.rule
    results = []
    for i, path in enumerate(paths):
        image = read_ultrasound_image(path)
        probability = predict_probability([network], image.pixels, model.input_size, flip=flip)
        mask = chosen.apply(probability)
        stem = path.stem
        _save_png(mask.astype(np.uint8) * 255, out / f"{stem}_mask.png")
        area_px = int(mask.sum())
        spacing = image.spacing_mm
        area_mm2 = area_px * spacing[0] * spacing[1] if spacing else None
        area = f"lesion {area_mm2:.1f} mm²" if area_mm2 is not None else f"lesion {area_px} px"
        shown, legend = legend_overlay(image.pixels, mask, note=f"{area} · peak probability {probability.max():.2f}")
        _save_png(shown, out / f"{stem}_overlay.png", legend)
        if dicom_out is not None and image.dicom is not None:
            from breastseg.workflows.ultrasound.dicom_export import write_ultrasound_dicom_outputs

            write_ultrasound_dicom_outputs(mask, image.dicom, out / f"{stem}_overlay.png", stem, dicom_out, area_mm2,
                                           float(probability.max()))  # fmt: skip
        result = ImagePrediction(
            image=str(path),
            area_px=area_px,
            pixel_spacing_mm=(spacing[0], spacing[1]) if spacing else None,
            area_mm2=None if area_mm2 is None else round(area_mm2, 3),
            mask=f"{stem}_mask.png",
            overlay=f"{stem}_overlay.png",
            peak_probability=float(probability.max()),
        )
        write_json(result.to_json(), out / f"{stem}.json")
        results.append(result)
        if progress is not None:
            progress(i + 1, len(paths))
    return results


def predict_folder(
    image: str | Path,
    out_dir: str | Path,
    model: str | Path | UltrasoundModel | None = None,
    threshold: float | None = None,
    flip: bool = True,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> list[ImagePrediction]:
    """``ultrasound predict``: one image or a folder of them (:func:`list_images`) with one loaded model (default
    the packaged BUSI model), each image's mask, overlay and JSON written into ``out_dir`` with ``summary.json``.
    ``threshold`` replaces only the probability cut of the model's mask rule."""
    from breastseg.workflows.ultrasound.model import default_model_path

    paths = list_images(image)
    loaded = model if isinstance(model, UltrasoundModel) else UltrasoundModel.load(model or default_model_path())
    rule = loaded.rule if threshold is None else dataclasses.replace(loaded.rule, threshold=threshold)
    results = predict_images(paths, loaded, out_dir, rule, progress, flip, device)
    source = "packaged" if model is None else "given" if isinstance(model, UltrasoundModel) else str(model)
    write_summary(results, source, out_dir)
    return results


def write_summary(results: Sequence[ImagePrediction], model: str, out_dir: str | Path) -> Path:
    """``out_dir/summary.json``: the model used and every image's prediction (:meth:`ImagePrediction.to_json`)."""
    return write_json({"model": model, "images": [r.to_json() for r in results]}, Path(out_dir) / "summary.json")


def score_cases(
    cases: Sequence[UltrasoundCase],
    model: UltrasoundModel,
    overlay_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    flip: bool = True,
    device: str | torch.device = "cpu",
) -> list[ImageScore]:
    """Each case's prediction scored against its reference (optionally writing overlays: reference green,
    prediction orange, the Dice in the legend, :func:`legend_overlay`); ``flip`` and ``device`` as in
    :func:`predict_images`."""
    scores = []
    for i, (case, image, reference, prediction) in enumerate(predictions(model, cases, flip, device=device)):
        scores.append(score_image(case, 0, prediction, reference))
        if overlay_dir is not None:
            overlay_dir.mkdir(parents=True, exist_ok=True)
            shown, legend = legend_overlay(image, prediction, reference, note=case.case_id)
            _save_png(shown, overlay_dir / f"{case.case_id}.png", legend)
        if progress is not None:
            progress(i + 1, len(cases))
    return scores


def seen_in_training(model: UltrasoundModel, cases: Sequence[UltrasoundCase]) -> list[str]:
    """The ids of ``cases`` whose image the model was trained or validated on (by pixel fingerprint, see
    :attr:`UltrasoundModel.training_fingerprints`): scores on them measure memory, not generalisation."""
    if not model.training_fingerprints:
        return []
    return [c.case_id for c in cases if pixel_fingerprint(load_case(c)[0]) in model.training_fingerprints]


def compare_models(a: Sequence[ImageScore], b: Sequence[ImageScore]) -> dict[str, Any]:
    """Paired Wilcoxon signed-rank tests of per-image Dice, pixel accuracy and recall on the lesion images both
    scored (matched by case id), as the study compared its two networks."""
    by_id = {s.case_id: s for s in b}
    pairs = [(s, by_id[s.case_id]) for s in a if s.case_id in by_id and s.tp + s.fn > 0]
    if len(pairs) < 2:
        raise InputError("need at least two lesion images scored by both models to compare them")
    out: dict[str, Any] = {"images": len(pairs)}
    for metric in ("dice", "pixel_accuracy", "recall"):
        x = [float(getattr(p, metric) or 0.0) for p, _ in pairs]
        y = [float(getattr(q, metric) or 0.0) for _, q in pairs]
        test = wilcoxon(x, y)
        out[metric] = {"mean_a": float(np.mean(x)), "mean_b": float(np.mean(y)), "wilcoxon_p": test.p_value}
    return out
