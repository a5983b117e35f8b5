"""The read-out of one specimen assessment, typed; ``result.json`` is its :meth:`AssessmentResult.to_json`.

Callers in Python (the CLI, the batch runner, the service, the study) read the fields; the JSON document is
written once, at the edge, with its schema version (readers of ``result.json`` — the HTML report, the DICOM SR,
the web viewer — read the document).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from breastseg._version import __version__
from breastseg.workflows.specimen.margin import MarginResult

if TYPE_CHECKING:
    from breastseg.workflows.specimen.pipeline import AssessConfig

#: the version of ``result.json``'s layout; raised when a key changes meaning or goes away
RESULT_SCHEMA_VERSION = 1


def describe_networks(model: Mapping[str, Any]) -> str | None:
    """Which ResU-Net networks read the margin, in words, from ``result.json``'s ``model`` (``None`` for the
    threshold method): the distilled student, the members, or the members deciding for an unsettled student."""
    path = model.get("inference_path")
    if path is None:
        return None
    if path == "distilled student":
        return f"distilled student of {model.get('members_in_bundle')} members"
    used = f"{model.get('members_used')} of {model.get('members_in_bundle')} members"
    if model.get("student_status_settled") is False:
        band = model.get("student_confirm_band")
        return f"{used}, exact settings (the student's status changed within probability 0.5 ± {band})"
    return used


@dataclass(frozen=True)
class AssessmentResult:
    """What one specimen assessment read.

    Attributes:
        margin: the margin status, minimum margin (mm), closest point and face, per-face margins, interval.
        tumour_volume_ml: the predicted tumour's volume, ml.
        specimen_volume_ml: the specimen tissue's volume, ml.
        tumour_sul_max: SUL (SUV normalised to lean body mass) maximum in the tumour; ``None`` with no tumour.
        tumour_sul_mean: SUL mean in the tumour; ``None`` with no tumour.
        method: ``"threshold"`` or ``"resunet"``.
        model: provenance of the model that ran (path, input channels, members or folds used, device, precision).
        working_spacing_mm: the working grid's spacing, ``(z, y, x)`` mm (the CT's after cropping).
        warnings: what the preprocessing noticed and the reader should know.
        otsu_tissue_threshold_hu: the tissue threshold Otsu chose, HU.
        container_voxels_removed: voxels of the container removed from the CT.
        timings_s: wall time of each stage and ``"total"``, s.
        config: the options the assessment ran with.
        inputs: the input paths (``"ct"``, ``"pet"``, …) when read from files.
    """

    margin: MarginResult
    tumour_volume_ml: float
    specimen_volume_ml: float
    tumour_sul_max: float | None
    tumour_sul_mean: float | None
    method: str
    model: dict[str, Any]
    working_spacing_mm: tuple[float, ...]
    warnings: tuple[str, ...]
    otsu_tissue_threshold_hu: float
    container_voxels_removed: int
    timings_s: dict[str, float]
    config: AssessConfig
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def positive(self) -> bool:
        """Whether the margin is positive (tumour within the configured distance of the surface)."""
        return self.margin.status == "positive"

    def with_inputs(self, inputs: dict[str, str]) -> AssessmentResult:
        """This result recording where its images were read from."""
        return dataclasses.replace(self, inputs=dict(inputs))

    def to_json(self) -> dict[str, Any]:
        """``result.json``'s document (its keys are documented in docs/reference/specimen.md)."""
        doc: dict[str, Any] = {
            "schema_version": RESULT_SCHEMA_VERSION,
            "breastseg_version": __version__,
            **self.margin.as_dict(),
            "tumour_volume_ml": self.tumour_volume_ml,
            "specimen_volume_ml": self.specimen_volume_ml,
            "tumour_sul_max": self.tumour_sul_max,
            "tumour_sul_mean": self.tumour_sul_mean,
            "method": self.method,
            "model": self.model,
            "working_spacing_mm": list(self.working_spacing_mm),
            "warnings": list(self.warnings),
            "otsu_tissue_threshold_hu": self.otsu_tissue_threshold_hu,
            "container_voxels_removed": self.container_voxels_removed,
            "timings_s": self.timings_s,
            "config": json.loads(json.dumps(dataclasses.asdict(self.config), default=str)),
        }
        if self.inputs:
            doc["inputs"] = self.inputs
        return doc
