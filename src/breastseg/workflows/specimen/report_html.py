"""The specimen assessment's HTML report: one self-contained page next to its figures."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from breastseg.io.atomic import atomic_path
from breastseg.workflows.specimen.margin import describe_interval
from breastseg.workflows.specimen.result import describe_networks


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}{(' ' + unit) if unit else ''}"
    return html.escape(str(value)) + ((" " + unit) if unit else "")


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
        ("Closest point (LPS)", _fmt(result.get("closest_point_mm"), "mm")),
        ("Ensemble calling positive", _percent(result.get("ensemble_positive_fraction"))),
        ("Tumour volume", _fmt(result.get("tumour_volume_ml"), "ml")),
        ("Specimen volume", _fmt(result.get("specimen_volume_ml"), "ml")),
        ("Tumour SULmax", _fmt(result.get("tumour_sul_max"))),
        ("Method", _fmt(result.get("method"))),
        ("Model", _fmt(result.get("model", {}).get("path"))),
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
    figures = "".join(
        f"<figure><img src='{html.escape(f)}' alt='orthogonal slices through the closest point'>"
        "<figcaption>Three orthogonal slices through the point of the tumour closest to the surface (cross): "
        "specimen contour blue, tumour contour orange; top CT, bottom fused PET-CT.</figcaption></figure>"
        for f in result.get("files", {}).get("figures", [])
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>breastseg specimen margin report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td {{ padding: 4px 14px; border-bottom: 1px solid #ddd; }}
figure img {{ max-width: 100%; }} .small {{ color: #666; font-size: 0.9em; }}
.warnings {{ border-left: 6px solid #b35900; padding: 0 1em; background: #fff4e5; }}
</style></head><body>
<h1>Specimen margin assessment</h1>
<table>{"".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)}</table>
{warning_block}
{figures}
<h2>Margin per face</h2><table>{face_rows}</table>
<h2>Timings</h2><table>{timing_rows}</table>
<p class="small">breastseg {html.escape(str(result.get("breastseg_version", "")))}. Research software: not for
clinical decisions. Margin measured face to face on the working grid
({_fmt(result.get("working_spacing_mm"), "mm")}).</p>
</body></html>
"""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
