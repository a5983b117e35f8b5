"""Cohort analysis of treatment response (the study's section 2.5 and Table 2): how well each biomarker's change
separates responders from non-responders, and how automatic biomarkers agree with manual ones.

**The table** (CSV, one row per patient): ``patient_id``; ``percist`` — the reference category (CMR, PMR, SMD,
PMD; responders = CMR + PMR, as the study binarised); then any of

* ``delta_<biomarker>`` — Δ% = (FU − BL) / BL × 100 (e.g. ``delta_sul_peak``, ``delta_tlg``,
  ``delta_pet_bone_index``, ``delta_pet_liver_index``), or a ``response_json`` column naming a
  ``petct response`` output from which every Δ% (and baseline / follow-up value) is taken;
* ``<biomarker>_baseline`` and ``<biomarker>_followup`` — the values, for per-patient trajectories;
* ``<biomarker>_auto`` and ``<biomarker>_manual`` — the same biomarker from the automatic and a manual
  segmentation, for agreement.

**Per biomarker**: ROC of −Δ% against responders (a fall predicts response), AUC with DeLong's 95 % interval,
Youden's cut-off expressed as a Δ% (responder when Δ% ≤ cut-off) with sensitivity and specificity, and the
Mann–Whitney U test of Δ% between the two groups; DeLong's test between every two biomarkers' AUCs.
**Agreement**: Lin's CCC (95 % CI), Spearman, Wilcoxon signed-rank, Bland–Altman.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.errors import InputError
from breastseg.evaluation.stats import (
    auc_ci,
    bland_altman,
    delong_test,
    lins_ccc,
    mann_whitney,
    roc_curve,
    spearman,
    wilcoxon,
    youden_cutoff,
)
from breastseg.io.tables import read_csv_rows
from breastseg.workflows.petct.response import RESPONDERS

CATEGORIES = ("CMR", "PMR", "SMD", "PMD")


def _number(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {value!r} is not a number") from exc


def read_cohort(path: str | Path) -> list[dict[str, Any]]:
    """The cohort table as rows of numbers (see the module docstring); ``response_json`` files are read in."""
    path = Path(path)
    rows = read_csv_rows(path, ("patient_id", "percist"))
    out = []
    for i, row in enumerate(rows, start=2):
        where = f"{path}, line {i}"
        category = str(row["percist"]).strip().upper()
        if category not in CATEGORIES:
            raise InputError(f"{where}: percist {row['percist']!r} is not one of {', '.join(CATEGORIES)}")
        record: dict[str, Any] = {"patient_id": row["patient_id"], "percist": category}
        if row.get("response_json"):
            record.update(_from_response_json(path.parent / str(row["response_json"]), where))
        for key, value in row.items():
            if key not in ("patient_id", "percist", "response_json") and value not in (None, ""):
                record[key] = _number(value, f"{where}, column {key}")
        out.append(record)
    return out


def _from_response_json(path: Path, where: str) -> dict[str, float | None]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{where}: cannot read response_json {path} ({exc})") from exc
    values: dict[str, float | None] = {f"delta_{k}": v for k, v in doc.get("change_percent", {}).items()}
    for timepoint, compared in doc.get("compared", {}).items():  # the values the changes were computed from
        for key, value in compared.items():
            values[f"{key}_{timepoint}"] = None if value is None else float(value)
    return values


def biomarkers_with_changes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Biomarkers that have a ``delta_`` value in every row (the ones a ROC can use)."""
    keys = [k[len("delta_") :] for k in rows[0] if k.startswith("delta_")] if rows else []
    return [k for k in keys if all(r.get(f"delta_{k}") is not None for r in rows)]


def response_analysis(rows: Sequence[Mapping[str, Any]], biomarkers: Sequence[str]) -> dict[str, Any]:
    """ROC, AUC (95 % CI), Youden cut-off, sensitivity, specificity and Mann–Whitney U per biomarker; DeLong
    between biomarkers (see the module docstring)."""
    responder = np.array([r["percist"] in RESPONDERS for r in rows])
    if responder.all() or not responder.any():
        raise InputError("the cohort needs both responders (CMR, PMR) and non-responders (SMD, PMD)")
    per: dict[str, Any] = {}
    labels = [bool(v) for v in responder]
    scores: dict[str, list[float]] = {}
    for name in biomarkers:
        delta = np.array([float(r[f"delta_{name}"]) for r in rows])
        scores[name] = [-float(v) for v in delta]  # a fall predicts response
        interval = auc_ci(labels, scores[name])
        cut = youden_cutoff(labels, scores[name])
        roc = roc_curve(labels, scores[name])
        per[name] = {
            "auc": interval.auc,
            "auc_ci95": [interval.ci_low, interval.ci_high],
            "youden_cutoff_delta_percent": -cut.threshold,
            "rule": f"responder when delta {name} <= {-cut.threshold:.1f} %",
            "sensitivity": cut.sensitivity,
            "specificity": cut.specificity,
            "mann_whitney_p": mann_whitney(delta[responder], delta[~responder]).p_value,
            "median_delta_responders": float(np.median(delta[responder])),
            "median_delta_non_responders": float(np.median(delta[~responder])),
            "roc": {"fpr": roc.fpr.tolist(), "tpr": roc.tpr.tolist()},
        }
    delong = {
        f"{a} vs {b}": asdict(delong_test(labels, scores[a], scores[b]))
        for i, a in enumerate(biomarkers)
        for b in biomarkers[i + 1 :]
    }
    return {
        "patients": len(rows),
        "responders": int(responder.sum()),
        "non_responders": int((~responder).sum()),
        "biomarkers": per,
        "delong": delong,
    }


def agreement_analysis(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Automatic vs manual for every ``<name>_auto`` / ``<name>_manual`` pair present in all rows."""
    names = [k[: -len("_auto")] for k in (rows[0] if rows else {}) if k.endswith("_auto")]
    out: dict[str, Any] = {}
    for name in names:
        auto = [float(a) for r in rows if (a := r.get(f"{name}_auto")) is not None]
        manual = [float(m) for r in rows if (m := r.get(f"{name}_manual")) is not None]
        if len(auto) != len(rows) or len(manual) != len(rows):  # a row without both values: no agreement
            continue
        ccc = lins_ccc(auto, manual)
        out[name] = {
            "n": len(auto),
            "lins_ccc": ccc.ccc,
            "lins_ccc_ci95": [ccc.ci_low, ccc.ci_high],
            "spearman_rho": spearman(auto, manual).statistic,
            "spearman_p": spearman(auto, manual).p_value,
            "wilcoxon_p": wilcoxon(auto, manual).p_value,
            "bland_altman": asdict(bland_altman(auto, manual)),
            "values": {"auto": auto, "manual": manual},
        }
    return out
