"""Figures of a response cohort, as the PET/CT study shows them: ROC curves per biomarker, automatic vs manual
(scatter with the identity line, and Bland–Altman), and per-patient biomarker trajectories. PNG, atomic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.report.figures import plt, save_figure


def roc_figure(biomarkers: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    """ROC curves (``biomarkers[name]["roc"]`` with ``fpr``, ``tpr``; ``auc``) on one set of axes."""
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    for name, result in biomarkers.items():
        ax.step(result["roc"]["fpr"], result["roc"]["tpr"], where="post", label=f"Δ {name} (AUC {result['auc']:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("responders (CMR + PMR) vs non-responders", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_aspect("equal")
    return save_figure(fig, path)


def agreement_figure(auto: Sequence[float], manual: Sequence[float], name: str, path: str | Path) -> Path:
    """Automatic vs manual: scatter with the identity line, and the Bland–Altman plot (bias, 95 % limits)."""
    a, m = np.asarray(auto, float), np.asarray(manual, float)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.8))
    lo, hi = float(min(a.min(), m.min())), float(max(a.max(), m.max()))
    left.scatter(m, a, s=14)
    left.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="identity")
    left.set_xlabel(f"{name}, manual")
    left.set_ylabel(f"{name}, automatic")
    left.legend(fontsize=8)
    mean, diff = (a + m) / 2, a - m
    bias, sd = float(diff.mean()), float(diff.std(ddof=1))
    right.scatter(mean, diff, s=14)
    for y, style in ((bias, "-"), (bias - 1.96 * sd, "--"), (bias + 1.96 * sd, "--")):
        right.axhline(y, color="grey", lw=0.8, ls=style)
    right.set_xlabel(f"mean of automatic and manual {name}")
    right.set_ylabel("automatic − manual")
    right.set_title(f"bias {bias:.3g}, 95 % limits {bias - 1.96 * sd:.3g} … {bias + 1.96 * sd:.3g}", fontsize=9)
    return save_figure(fig, path)


def trajectories_figure(
    rows: Sequence[Mapping[str, Any]], name: str, responders: Sequence[str], path: str | Path
) -> Path:
    """Each patient's ``<name>_baseline`` → ``<name>_followup``, coloured by responder status."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for row in rows:
        before, after = row.get(f"{name}_baseline"), row.get(f"{name}_followup")
        if before is None or after is None:
            continue
        colour = "#1f77b4" if row["percist"] in responders else "#d62728"
        ax.plot([0, 1], [before, after], color=colour, marker="o", lw=1, ms=3, alpha=0.8)
    ax.plot([], [], color="#1f77b4", label="responders")
    ax.plot([], [], color="#d62728", label="non-responders")
    ax.set_xticks([0, 1], ["baseline", "follow-up"])
    ax.set_ylabel(name)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def mip_figure(
    scans: Sequence[tuple[str, np.ndarray, np.ndarray, Sequence[float]]], path: str | Path, suv_max: float = 8.0
) -> Path:
    """Coronal maximum-intensity projections of PET SUV (inverted grey, as read in nuclear medicine) with the
    lesion mask's projection outlined in red, one panel per ``(title, suv (z, y, x), lesions, spacing)``;
    head up, the patient's right on the viewer's left (radiological convention)."""
    fig, axes = plt.subplots(1, len(scans), figsize=(3.2 * len(scans), 5.6), squeeze=False)
    for ax, (title, suv, lesions, spacing) in zip(axes[0], scans, strict=True):
        mip = np.asarray(suv).max(axis=1)  # project along y (anterior-posterior): (z, x)
        mask = np.asarray(lesions, bool).any(axis=1)
        dz, _, dx = spacing
        extent = (0.0, mip.shape[1] * dx, 0.0, mip.shape[0] * dz)
        ax.imshow(mip, cmap="gray_r", vmin=0.0, vmax=suv_max, origin="lower", extent=extent)
        if mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors="red", linewidths=0.8, origin="lower", extent=extent)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)
