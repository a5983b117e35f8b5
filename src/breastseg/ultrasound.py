"""The breast-ultrasound workflow as Python, one call per command (``breastseg ultrasound …``), with its
defaults: the packaged BUSI model unless ``model`` names another.

    import breastseg.ultrasound
    for r in breastseg.ultrasound.predict("scans/", "masks/"):
        print(r.image, r.lesion_found, r.area_px, r.peak_probability)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from breastseg.workflows.ultrasound.predict import ImagePrediction

__all__ = ["predict"]


def predict(
    images: str | Path,
    out: str | Path,
    *,
    model: str | Path | None = None,
    threshold: float | None = None,
    flip: bool = True,
    device: str = "cpu",
) -> list[ImagePrediction]:
    """``breastseg ultrasound predict``: each image's lesion mask, overlay and JSON (area in pixels, in mm² from a
    calibrated DICOM; the peak lesion probability) and ``summary.json``, written into ``out``."""
    from breastseg.predict.device import resolve_device
    from breastseg.workflows.ultrasound.predict import predict_folder

    return predict_folder(images, out, model, threshold, flip, resolve_device(device))
