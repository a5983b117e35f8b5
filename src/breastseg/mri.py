"""The breast DCE-MRI workflow as Python, one call per command (``breastseg mri …``), with its defaults.

    import breastseg.mri
    seg = breastseg.mri.segment("exams/e4", "seg4", model="mri.pt")
    seg.tumour.volume_ml, seg.tumour.curve_type                # ml, "wash-out"

No MRI model ships: train one with ``breastseg mri train`` (docs/how-to/mri.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from breastseg.workflows.mri.pipeline import MriEvaluation, MriSegmentation

__all__ = ["evaluate", "segment"]


def segment(
    exam: str | Path,
    out: str | Path,
    *,
    model: str | Path,
    fraction: float = 0.6,
    per_slice: bool = False,
    device: str = "auto",
    breast_model: str | Path | None = None,
) -> MriSegmentation:
    """``breastseg mri segment``: the tumour mask, volume (ml), longest diameter (mm), kinetic curve and functional
    tumour volume of one exam folder (t1, t1c_1 … and times.json, or a DICOM dynamic series), written into
    ``out``."""
    from breastseg.workflows.mri.pipeline import segment_exam_folder

    return segment_exam_folder(exam, model, out, fraction, per_slice, device, breast_model)


def evaluate(
    cases: str | Path, out: str | Path, *, model: str | Path, fraction: float = 0.6, device: str = "auto"
) -> MriEvaluation:
    """``breastseg mri evaluate``: every exam of a cases table segmented and compared with its reference mask
    (Dice, HD95 mm, volumes ml), written into ``out``."""
    from breastseg.workflows.mri.network import MriModel
    from breastseg.workflows.mri.pipeline import evaluate_cases, read_cases_csv

    return evaluate_cases(read_cases_csv(cases), MriModel.load(model), out, fraction, device, model_source=str(model))
