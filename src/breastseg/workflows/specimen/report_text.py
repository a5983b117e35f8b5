"""The words a specimen result is shown with: the figure's title and header line, the model's name — one wording
for the figure, the HTML report and the web viewer, from ``result.json``'s keys."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from breastseg.workflows.specimen.margin import interval_span


def model_name(result: Mapping[str, Any]) -> str | None:
    """The model file's name (not where it is installed), or ``None`` for the threshold method."""
    model = result.get("model") or {}
    path = model.get("path") if isinstance(model, Mapping) else None
    return Path(path).name if path else None


def figure_title(result: Mapping[str, Any]) -> str:
    """The report figure's title from ``result.json``'s keys: status, margin (mm, two decimals), closest face and
    the interval, e.g. ``"margin NEGATIVE: 1.04 mm at the right face (0.84–1.62 mm)"``."""
    title = f"margin {str(result['margin_status']).upper()}"
    if result.get("min_margin_mm") is not None:
        title += f": {float(result['min_margin_mm']):.2f} mm"
        if result.get("closest_face"):
            title += f" at the {result['closest_face']} face"
        span = interval_span(result)
        if span is not None:
            title += f" ({span})"
    threshold = result.get("positive_margin_threshold_mm")
    return title + (f"; positive when ≤ {float(threshold):g} mm" if threshold is not None else "")


def figure_header(result: Mapping[str, Any], when: datetime.date | None = None) -> str:
    """The line under the figure's title: patient, CT file, method and model name, the date (today by default)."""
    cfg = result.get("config") or {}
    parts = []
    if cfg.get("patient_id"):
        parts.append(f"patient {cfg['patient_id']}")
    if (result.get("inputs") or {}).get("ct"):
        parts.append(f"CT {Path(result['inputs']['ct']).name}")
    name = model_name(result)
    parts.append(f"method {result.get('method')}" + (f" ({name})" if name else ""))
    parts.append(f"assessed {(when or datetime.date.today()).isoformat()}")
    return " · ".join(parts)
