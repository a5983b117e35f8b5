"""The specimen assessment's HTML report: one self-contained page next to its figures."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from breastseg.io.atomic import atomic_path
from breastseg.workflows.specimen.margin import describe_interval
from breastseg.workflows.specimen.report_text import figure_header, model_name
from breastseg.workflows.specimen.result import describe_networks


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _fmt(value: Any, unit: str = "", decimals: int = 2) -> str:
    """A value as the page shows it: floats to ``decimals`` places, a point or spacing as its numbers joined
    (``"12.5, -12.1, 3.9 mm"``), nothing as "—"; text escaped."""
    if value is None:
        return "—"
    tail = f" {unit}" if unit else ""
    if isinstance(value, float):
        return _number(value, decimals) + tail
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return ", ".join(_number(float(v), decimals) for v in value) + tail
    return html.escape(str(value)) + tail


def _spacing(value: Any) -> str:
    """A voxel size to the precision it was set with (a float32 0.2 read back as 0.20000000298 shows as 0.2)."""
    if not value:
        return "—"
    return " × ".join(f"{float(v):.4g}" for v in value) + " mm"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} % of the members"


def specimen_report(result: dict[str, Any], path: str | Path) -> Path:
    """Write ``report.html`` for a specimen result (figures referenced relative to the page)."""
    status = result["margin_status"]
    colour = "#c0392b" if status == "positive" else "#1e8449"
    rows = [
        ("Margin status", f"<b style='color:{colour}'>{status.upper()}</b>"),
        ("Minimum margin", _fmt(result.get("min_margin_mm"), "mm")),
        ("Margin interval", _fmt(describe_interval(result))),
        ("Positive when ≤", _fmt(result.get("positive_margin_threshold_mm"), "mm")),
        ("Closest face", _fmt(result.get("closest_face"))),
        ("Closest point (LPS)", _fmt(result.get("closest_point_mm"), "mm", 1)),
        ("Surface point it faces (LPS)", _fmt(result.get("surface_point_mm"), "mm", 1)),
        ("Ensemble calling positive", _percent(result.get("ensemble_positive_fraction"))),
        ("Tumour volume", _fmt(result.get("tumour_volume_ml"), "ml")),
        ("Specimen volume", _fmt(result.get("specimen_volume_ml"), "ml")),
        ("Tumour SULmax", _fmt(result.get("tumour_sul_max"))),
        ("Method", _fmt(result.get("method"))),
        ("Model", _fmt(model_name(result))),
        ("Networks", _fmt(describe_networks(result.get("model", {})))),
    ]
    if result.get("reason"):
        rows.append(("Note", _fmt(result["reason"])))
    warnings = "".join(f"<li>{html.escape(str(w))}</li>" for w in result.get("warnings") or [])
    warning_block = f"<div class='warnings'><h2>Warnings</h2><ul>{warnings}</ul></div>" if warnings else ""
    faces = result.get("per_face_margin_mm", {})
    face_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v, 'mm')}</td></tr>" for k, v in faces.items())
    timing_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.2f} s</td></tr>" for k, v in result.get("timings_s", {}).items()
    )
    captions = {
        "closest_point.png": "Three orthogonal slices through the point of the tumour closest to the surface (cross), "
        "the line to the surface point it faces; top CT, bottom fused PET-CT; patient directions at the edges.",
        "surface_3d.png": "The specimen (translucent) and the tumour in 3D, patient coordinates (LPS mm), with the "
        "closest approach (green).",
    }
    figures = "".join(
        f"<figure><img src='{html.escape(f)}' alt='{html.escape(Path(f).stem.replace('_', ' '))}'>"
        f"<figcaption>{html.escape(captions.get(Path(f).name, ''))}</figcaption></figure>"
        for f in result.get("files", {}).get("figures", [])
    )
    header = html.escape(figure_header(result))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>breastseg specimen margin report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td {{ padding: 4px 14px; border-bottom: 1px solid #ddd; }}
figure {{ display: inline-block; vertical-align: top; margin: 0 1em 1em 0; max-width: 100%; }}
figure img {{ max-width: 100%; }} figcaption {{ color: #555; font-size: 0.9em; max-width: 60em; }}
.small {{ color: #666; font-size: 0.9em; }}
.warnings {{ border-left: 6px solid #b35900; padding: 0 1em; background: #fff4e5; }}
</style></head><body>
<h1>Specimen margin assessment</h1>
<p class="small">{header}</p>
<table>{"".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)}</table>
{warning_block}
{figures}
<h2>Margin per face</h2><table>{face_rows}</table>
<h2>Timings</h2><table>{timing_rows}</table>
<p class="small">breastseg {html.escape(str(result.get("breastseg_version", "")))}. Research software: not for
clinical decisions. Margin measured face to face on the working grid
({_spacing(result.get("working_spacing_mm"))}).</p>
</body></html>
"""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
