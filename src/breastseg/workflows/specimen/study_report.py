"""The specimen study's tables and Fig. 3 from a run of the protocol: Markdown, CSV and PNG, written atomically.

Layout follows the publication: Table 2 (segmentation, per input: thresholding, ResU-Net, Wilcoxon p with
Holm-significant values in bold), Table 3 (margin detection scores), Table 4 (McNemar p-values), Fig. 3 (box
plots of the per-patient metrics per input and method).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from breastseg.io.atomic import atomic_path, write_json
from breastseg.io.tables import write_csv_rows
from breastseg.workflows.specimen.study import METHODS, METRICS, StudyResult, study_document

INPUT_NAMES = {"ct": "micro-CT", "pet": "micro-PET", "petct": "micro-PET-CT"}
METHOD_NAMES = {"threshold": "Intens thresh", "resunet": "ResU-Net"}
METRIC_NAMES = {"dice": "DSC", "pr_auc": "PR-AUC", "hd95_mm": "95HD (mm)", "surface_dice": "1mmCD"}
_COLOURS = {"threshold": "#2ca02c", "resunet": "#ff8c00"}


def _text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _mean_sd(mean: float | None, sd: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.2f} ± {sd:.2f}" if sd is not None else f"{mean:.2f}"


def _p(value: float | None, significant: bool = False) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    text = f"{value:.4f}"
    return f"**{text}**" if significant else text


def table2_markdown(table: Sequence[dict[str, Any]], n_patients: int, tumour_types: Sequence[str]) -> str:
    inputs = list(dict.fromkeys(r["input"] for r in table))
    head = "| metric | " + " | ".join(
        f"{INPUT_NAMES[i]}: {METHOD_NAMES['threshold']} | {INPUT_NAMES[i]}: {METHOD_NAMES['resunet']} | p"
        for i in inputs
    )
    lines = [
        f"**Table 2** — agreement between true and predicted tumour segmentations, "
        f"{n_patients} test patients ({'/'.join(tumour_types)}); mean ± SD over patients",
        "",
        head + " |",
        "|---" * (1 + 3 * len(inputs)) + "|",
    ]
    for metric in METRICS:
        cells = []
        for i in inputs:
            (e,) = [r for r in table if r["input"] == i and r["metric"] == metric]
            cells += [
                _mean_sd(e["threshold_mean"], e["threshold_sd"]),
                _mean_sd(e["resunet_mean"], e["resunet_sd"]),
                _p(e["p_value"], e["significant"]),
            ]
        lines.append(f"| {METRIC_NAMES[metric]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "p: Wilcoxon signed-rank test, ResU-Net vs thresholding, per input and metric; bold: significant after "
        "Bonferroni–Holm (α = 0.05, m = 4 per input).",
    ]
    return "\n".join(lines) + "\n"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def table3_markdown(table: Sequence[dict[str, Any]]) -> str:
    if not table:
        return "**Table 3** — no 3D specimens were given.\n"
    n, n_pos = table[0]["n"], table[0]["n_positive"]
    lines = [
        f"**Table 3** — true vs predicted margin status, {n} specimens ({n_pos} positive), PET-CT input",
        "",
        "| | " + " | ".join(METHOD_NAMES[r["method"]] for r in table) + " |",
        "|---" * (1 + len(table)) + "|",
    ]
    for key, name in (
        ("sensitivity", "Sensitivity (Recall)"),
        ("specificity", "Specificity"),
        ("precision", "Precision"),
        ("f1", "F1 score"),
    ):
        lines.append(f"| {name} | " + " | ".join(_score(r[key]) for r in table) + " |")
    lines.append(
        "| TP / FP / TN / FN | " + " | ".join(f"{r['tp']} / {r['fp']} / {r['tn']} / {r['fn']}" for r in table) + " |"
    )
    if any(r.get("not_assessable") for r in table):
        lines.append(
            "| not assessable (left out of the scores, wrong for McNemar) | "
            + " | ".join(str(r.get("not_assessable", 0)) for r in table)
            + " |"
        )
    lines += ["", "Positive: minimum margin ≤ 0.1 mm (the study's rule); largest 3D component kept."]
    return "\n".join(lines) + "\n"


def table4_markdown(table: Sequence[dict[str, Any]]) -> str:
    if not table:
        return "**Table 4** — no 3D specimens were given.\n"
    lines = [
        "**Table 4** — exact McNemar tests on which specimens each strategy classified correctly",
        "",
        "| comparison | only first correct | only second correct | p |",
        "|---|---|---|---|",
    ]
    for r in table:
        a, b = r["comparison"].split(" vs ")
        lines.append(
            f"| {METHOD_NAMES[a]} vs {METHOD_NAMES[b]} | {r['only_a_correct']} | {r['only_b_correct']} | "
            f"{_p(r['p_value'], r['significant'])} |"
        )
    lines += [
        "",
        f"Bold: significant after Bonferroni–Holm (α = 0.05, m = {table[0]['m']}). The study also compared "
        "seven physicians' majority vote; a phantom cohort has no readers.",
    ]
    return "\n".join(lines) + "\n"


def fig3_boxplot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Fig. 3: per-patient metric distributions per input (groups) and method (colours)."""
    inputs = list(dict.fromkeys(r["input"] for r in rows))
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.0 * len(METRICS), 3.8))
    for ax, metric in zip(axes, METRICS, strict=True):
        data, positions, colours = [], [], []
        for gi, inputs_name in enumerate(inputs):
            for mi, method in enumerate(METHODS):
                values = [
                    r[metric]
                    for r in rows
                    if r["input"] == inputs_name and r["method"] == method and r[metric] is not None
                ]
                data.append(values)
                positions.append(gi * 3 + mi)
                colours.append(_COLOURS[method])
        parts = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showfliers=True)
        for box, colour in zip(parts["boxes"], colours, strict=True):
            box.set_facecolor(colour)
            box.set_alpha(0.75)
        ax.set_xticks([gi * 3 + 0.5 for gi in range(len(inputs))])
        ax.set_xticklabels([INPUT_NAMES[i] for i in inputs], fontsize=8)
        ax.set_title(METRIC_NAMES[metric])
        if metric != "hd95_mm":
            ax.set_ylim(-0.02, 1.02)
    handles = [plt.Rectangle((0, 0), 1, 1, color=_COLOURS[m], alpha=0.75) for m in METHODS]
    fig.legend(handles, [METHOD_NAMES[m] for m in METHODS], loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def write_study(result: StudyResult, out_dir: str | Path) -> dict[str, Path]:
    """Write every table (Markdown + CSV), Fig. 3, the per-case rows, study.json and report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    cfg = result.config
    n_patients = len({r["patient_id"] for r in result.patient_rows})
    parts = []
    if result.patient_rows:
        written["per_patient"] = write_csv_rows(result.patient_rows, out / "per_patient.csv")
        written["table2_csv"] = write_csv_rows(result.table2, out / "table2.csv")
        md = table2_markdown(result.table2, n_patients, cfg.tumour_types)
        written["table2"] = _text(out / "table2.md", md)
        written["fig3"] = fig3_boxplot(result.patient_rows, out / "fig3_boxplot.png")
        parts.append(md)
    if result.specimen_rows:
        written["specimens"] = write_csv_rows(result.specimen_rows, out / "specimens.csv")
        written["table3_csv"] = write_csv_rows(result.table3, out / "table3.csv")
        written["table4_csv"] = write_csv_rows(result.table4, out / "table4.csv")
        parts.append(table3_markdown(result.table3))
        parts.append(table4_markdown(result.table4))
        written["table3"] = _text(out / "table3.md", parts[-2])
        written["table4"] = _text(out / "table4.md", parts[-1])
    doc = study_document(result)
    written["study"] = write_json(doc, out / "study.json")
    header = [
        "# Specimen study reproduction (synthetic phantom cohort — not clinical evidence)",
        "",
        f"breastseg {doc['breastseg_version']}; nested cross-validation {cfg.outer} × {cfg.inner}, "
        f"{cfg.trials} Optuna trials per test fold × {cfg.epochs} epochs ({cfg.space} search space), seed {cfg.seed}.",
        f"Wall time: {json.dumps(result.seconds)} s.",
        "",
    ]
    if result.patient_rows:
        header += ["![Fig. 3](fig3_boxplot.png)", ""]
    written["report"] = _text(out / "report.md", "\n".join(header) + "\n" + "\n".join(parts))
    return written
