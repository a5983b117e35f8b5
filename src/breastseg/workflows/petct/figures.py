"""Figures of a response cohort, as the PET/CT study shows them: ROC curves per biomarker, automatic vs manual
(scatter with the identity line, and Bland–Altman), per-patient biomarker trajectories; and of one scan or a scan
pair, the coronal maximum-intensity projection with the lesions numbered as ``lesions.csv`` numbers them. PNG,
atomic."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.image import Image
from breastseg.report.figures import direction_letters, plt, save_figure
from breastseg.workflows.petct.biomarkers import Lesion


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


@dataclass(frozen=True)
class MipPanel:
    """One scan of a maximum-intensity-projection figure: its PET in SUV on its grid, the lesion mask on that
    grid, the lesions as ``biomarkers.json`` / ``lesions.csv`` number them, and which of them are new."""

    title: str
    suv: Image
    lesions: np.ndarray
    numbered: Sequence[Lesion] = ()
    new_labels: frozenset[int] = frozenset()


@dataclass(frozen=True)
class CoronalMip:
    """A coronal projection laid out for reading: ``pixels`` (rows head to foot, columns the patient's right to
    left), the panel's ``width_mm`` and ``height_mm``, and ``place``, the map from a continuous array index
    ``(z, y, x)`` of the grid to the panel's (mm across, mm down)."""

    pixels: np.ndarray
    width_mm: float
    height_mm: float
    place: Callable[[Sequence[float]], tuple[float, float]]


def coronal_mip(suv: Image, volume: np.ndarray) -> CoronalMip:
    """The coronal maximum-intensity projection of ``volume`` (on ``suv``'s grid) as radiologists read it: the
    patient's head up and the patient's right on the viewer's left, whatever the array's direction matrix."""
    axes = {frozenset(direction_letters(suv, a)): a for a in range(3)}
    lr, ap, si = axes.get(frozenset("RL")), axes.get(frozenset("AP")), axes.get(frozenset("IS"))
    if lr is None or ap is None or si is None:
        lr, ap, si = 2, 1, 0  # an oblique grid: the array's own axes
    mip = np.asarray(volume).max(axis=ap)
    mip = mip if si < lr else mip.T  # rows: head-foot, columns: right-left
    flip_rows = direction_letters(suv, si)[0] != "S"  # row 0 must be the head end
    flip_cols = direction_letters(suv, lr)[0] != "R"  # column 0 the patient's right
    mip = mip[::-1] if flip_rows else mip
    mip = mip[:, ::-1] if flip_cols else mip
    n_rows, n_cols = suv.shape[si], suv.shape[lr]
    d_row, d_col = suv.spacing[si], suv.spacing[lr]

    def place(index: Sequence[float]) -> tuple[float, float]:
        row = n_rows - 1 - index[si] if flip_rows else index[si]
        col = n_cols - 1 - index[lr] if flip_cols else index[lr]
        return (float(col) + 0.5) * d_col, (float(row) + 0.5) * d_row

    return CoronalMip(mip, n_cols * d_col, n_rows * d_row, place)


def mip_panels_figure(panels: Sequence[MipPanel], suv_max: float = 8.0, title: str = "") -> Any:
    """Coronal maximum-intensity projections of PET SUV (inverted grey, as read in nuclear medicine) with the lesion
    mask's projection outlined in red, one panel per :class:`MipPanel` (:func:`coronal_mip`: head up, the
    patient's right on the viewer's left; the directions at the panel edges). Each numbered lesion carries its
    ``lesions.csv`` label at its centroid (``gid="lesion-<label>"``); new lesions are marked "new" in magenta.
    A colour bar gives the SUV scale in the PET's units; ``title`` heads the figure (the response category)."""
    projections = [coronal_mip(panel.suv, panel.suv.array) for panel in panels]
    aspect = max(p.height_mm / max(p.width_mm, 1e-6) for p in projections)
    header_in = 0.75 if title else 0.35
    panel_in = 3.4
    height_in = min(panel_in * aspect, 9.0) + header_in + 0.1
    fig, axes = plt.subplots(1, len(panels), figsize=(panel_in * len(panels) + 0.9, height_in), squeeze=False)
    shown = None
    for ax, panel, projection in zip(axes[0], panels, projections, strict=True):
        mask = coronal_mip(panel.suv, np.asarray(panel.lesions, bool)).pixels
        mip, place = projection.pixels, projection.place
        width_mm, height_mm = projection.width_mm, projection.height_mm
        extent = (0.0, width_mm, height_mm, 0.0)
        shown = ax.imshow(mip, cmap="gray_r", vmin=0.0, vmax=suv_max, extent=extent, interpolation="bilinear")
        if mask.any():
            ys = (np.arange(mask.shape[0]) + 0.5) * height_mm / mask.shape[0]
            xs = (np.arange(mask.shape[1]) + 0.5) * width_mm / mask.shape[1]
            ax.contour(xs, ys, mask.astype(float), levels=[0.5], colors="red", linewidths=0.8)
        for lesion in panel.numbered:
            x, y = place(lesion.centroid_voxel)
            new = lesion.label in panel.new_labels
            ax.annotate(f"{lesion.label} new" if new else str(lesion.label), (x, y), xytext=(7, 5),
                        textcoords="offset points", color="magenta" if new else "#c00000", fontsize=8,
                        fontweight="bold", va="center", gid=f"lesion-{lesion.label}",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75})  # fmt: skip
        for text, xy, align in (
            ("R", (0.02, 0.5), ("left", "center")),
            ("L", (0.98, 0.5), ("right", "center")),
            ("S", (0.5, 0.99), ("center", "top")),
            ("I", (0.5, 0.01), ("center", "bottom")),
        ):
            ax.text(*xy, text, transform=ax.transAxes, ha=align[0], va=align[1], color="#1f4fbf", fontsize=10,
                    fontweight="bold", gid=f"orientation-{text}")  # fmt: skip
        ax.set_title(panel.title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(textwrap.fill(title, 34 * len(panels) + 10), fontsize=11, x=0.02, y=1 - 0.08 / height_in,
                     ha="left", va="top")  # fmt: skip
    fig.subplots_adjust(left=0.02, right=0.86, bottom=0.05 / height_in, top=1 - header_in / height_in, wspace=0.05)
    if shown is not None:
        units = panels[0].suv.units or "SUV"
        bar = fig.colorbar(shown, ax=list(axes[0]), fraction=0.04, pad=0.02, extend="max")
        bar.set_label(f"PET ({units}), MIP")
    return fig


def mip_figure(panels: Sequence[MipPanel], path: str | Path, suv_max: float = 8.0, title: str = "") -> Path:
    """:func:`mip_panels_figure` written as a PNG at ``path``."""
    return save_figure(mip_panels_figure(panels, suv_max, title), path, tight=False)
