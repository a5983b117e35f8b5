"""Figures: orthogonal slices with contours, fused PET-CT. Written as PNG, atomically.

Colours follow the specimen study's figures: specimen contour blue, tumour contour orange.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from breastseg.image import Image
from breastseg.io.atomic import atomic_path

SPECIMEN_COLOUR = "#1f77ff"
TUMOUR_COLOUR = "#ff8c00"
_VIEWS = (("axial", 0), ("coronal", 1), ("sagittal", 2))


def save_figure(fig: Any, path: str | Path, dpi: int = 100, tight: bool = True) -> Path:
    """Lay out (``tight``: matplotlib's tight layout, which draws the figure once more to measure it), write as PNG
    atomically, and close a matplotlib figure."""
    if tight:
        fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path


def _plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.take(volume, index, axis=axis)


def _extent(shape: tuple[int, ...], spacing: tuple[float, ...], axis: int) -> list[float]:
    rows_axis, cols_axis = [a for a in range(3) if a != axis]
    return [0, shape[cols_axis] * spacing[cols_axis], shape[rows_axis] * spacing[rows_axis], 0]


def orthogonal_slices(
    ct: Image,
    pet: Image | None,
    specimen: np.ndarray,
    tumour: np.ndarray,
    point_index: Sequence[int],
    path: str | Path,
    title: str = "",
    ct_window: tuple[float, float] = (-300.0, 300.0),
) -> Path:
    """Three orthogonal slices through ``point_index`` (array order): CT with the specimen contour (blue) and
    tumour contour (orange); below, the fused PET-CT. The point is marked with a cross."""
    rows = 2 if pet is not None else 1
    fig, axes = plt.subplots(rows, 3, figsize=(12, 4.2 * rows), squeeze=False)
    for col, (name, axis) in enumerate(_VIEWS):
        idx = int(point_index[axis])
        extent = _extent(ct.shape, ct.spacing, axis)
        rows_axis, cols_axis = [a for a in range(3) if a != axis]
        mark = (point_index[cols_axis] * ct.spacing[cols_axis], point_index[rows_axis] * ct.spacing[rows_axis])
        for row in range(rows):
            ax = axes[row][col]
            ax.imshow(
                _plane(ct.array, axis, idx),
                cmap="gray",
                vmin=ct_window[0],
                vmax=ct_window[1],
                extent=extent,
                interpolation="nearest",
            )
            if row == 1 and pet is not None:
                sl = _plane(pet.array, axis, idx)
                peak = float(pet.array.max()) or 1.0
                ax.imshow(
                    np.ma.masked_less(sl, 0.05 * peak),
                    cmap="hot",
                    alpha=0.6,
                    vmin=0,
                    vmax=peak,
                    extent=extent,
                    interpolation="bilinear",
                )
            for mask, colour in ((specimen, SPECIMEN_COLOUR), (tumour, TUMOUR_COLOUR)):
                plane = _plane(mask, axis, idx).astype(float)
                if plane.any() and not plane.all():
                    ys = (np.arange(plane.shape[0]) + 0.5) * ct.spacing[rows_axis]
                    xs = (np.arange(plane.shape[1]) + 0.5) * ct.spacing[cols_axis]
                    ax.contour(xs, ys, plane, levels=[0.5], colors=colour, linewidths=1.2)
            ax.plot(*mark, marker="+", color="lime", markersize=14, mew=2)
            ax.set_title(f"{name} {'PET-CT' if row == 1 else 'CT'}", fontsize=10)
            ax.set_xlabel("mm")
    if title:
        fig.suptitle(title)
    # a fixed grid instead of the tight layout: the panels are always the same, and measuring them costs a draw
    # (a fifth of the figure's time, which is on the command's critical path)
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.07 / rows, top=1 - 0.08 / rows, wspace=0.22, hspace=0.2)
    return save_figure(fig, path, dpi=90, tight=False)


def confusion_matrix_figure(
    counts: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """A pixel confusion matrix (rows: reference, columns: prediction) shaded by the row-normalised fraction,
    each cell labelled with its fraction and count, as the ultrasound study's Fig. 4 presents it."""
    m = np.asarray(counts, dtype=float)
    fractions = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    for (r, c), value in np.ndenumerate(fractions):
        ax.text(
            c,
            r,
            f"{value:.3f}\n({int(m[r, c]):,})",
            ha="center",
            va="center",
            color="white" if value > 0.5 else "black",
            fontsize=9,
        )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi=100)
