"""Figures: orthogonal slices with contours, fused PET-CT, patient directions at the panel edges. Written as PNG,
atomically.

Colours follow the specimen study's figures: specimen contour blue, tumour contour orange.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from breastseg.image import Grid, Image
from breastseg.io.atomic import atomic_path

SPECIMEN_COLOUR = "#1f77ff"
TUMOUR_COLOUR = "#ff8c00"
#: the three planes, each named with the array axis (z, y, x) normal to it
VIEWS = (("axial", 0), ("coronal", 1), ("sagittal", 2))


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


def _extent(shape: tuple[int, ...], spacing: tuple[float, ...], axis: int) -> list[float]:
    rows_axis, cols_axis = [a for a in range(3) if a != axis]
    return [0, shape[cols_axis] * spacing[cols_axis], shape[rows_axis] * spacing[rows_axis], 0]


#: patient direction letters of +x, +y, +z (LPS) and of the opposite directions
_TOWARDS = ("L", "P", "S")
_AWAY = ("R", "A", "I")


def direction_letters(image: Image | Grid, axis: int) -> tuple[str, str]:
    """The patient directions (``"R"``/``"L"``, ``"A"``/``"P"``, ``"I"``/``"S"``) of array axis ``axis``'s low and
    high index ends, from the image's direction matrix (LPS): an axis whose increasing index runs towards the
    patient's left has ``R`` at index 0 and ``L`` at the far end."""
    vector = np.asarray(image.direction)[:, image.ndim - 1 - axis]
    k = int(np.argmax(np.abs(vector)))
    towards, away = _TOWARDS[k], _AWAY[k]
    return (away, towards) if vector[k] > 0 else (towards, away)


def _in_plane(index: np.ndarray, spacing: tuple[float, ...], axis: int) -> tuple[float, float]:
    """Panel coordinates (mm across, mm down) of a continuous array index on the plane normal to ``axis``."""
    rows_axis, cols_axis = [a for a in range(3) if a != axis]
    return (float(index[cols_axis]) + 0.5) * spacing[cols_axis], (float(index[rows_axis]) + 0.5) * spacing[rows_axis]


@dataclass(frozen=True)
class PlaneView:
    """How the plane normal to array axis ``axis`` is laid out on a panel: its array axes down (``rows_axis``) and
    across (``cols_axis``), the ``extent`` (mm) and ``origin`` for ``imshow`` (coronal and sagittal planes head up,
    as radiologists read them) and the patient directions at the left, right, top and bottom edges."""

    axis: int
    rows_axis: int
    cols_axis: int
    extent: list[float]
    origin: str
    letters: tuple[str, str, str, str]

    def cut(self, volume: np.ndarray, index: int) -> np.ndarray:
        """The plane ``index`` of ``volume`` (on the view's grid) along the view's axis."""
        return np.take(volume, index, axis=self.axis)


def plane_view(image: Image, axis: int) -> PlaneView:
    """The :class:`PlaneView` of ``image``'s plane normal to ``axis`` (array order), from its direction matrix."""
    rows_axis, cols_axis = [a for a in range(3) if a != axis]
    extent = _extent(image.shape, image.spacing, axis)
    left, right = direction_letters(image, cols_axis)
    top, bottom = direction_letters(image, rows_axis)
    upright = top == "I"
    if upright:
        extent = [extent[0], extent[1], extent[3], extent[2]]
        top, bottom = bottom, top
    return PlaneView(axis, rows_axis, cols_axis, extent, "lower" if upright else "upper", (left, right, top, bottom))


def show_plane(ax: Any, view: PlaneView, plane: np.ndarray, **imshow: Any) -> Any:
    """``imshow`` a plane cut by :meth:`PlaneView.cut` on the view's mm axes; returns the AxesImage (for a colour
    bar)."""
    return ax.imshow(plane, extent=view.extent, origin=view.origin, **imshow)


def draw_contours(
    ax: Any, view: PlaneView, spacing: Sequence[float], index: int, masks: Sequence[tuple[np.ndarray, str]]
) -> None:
    """Outline each ``(mask, colour)`` on plane ``index`` (voxel centres at their mm positions)."""
    for mask, colour in masks:
        plane = view.cut(mask, index).astype(float)
        if plane.any() and not plane.all():
            ys = (np.arange(plane.shape[0]) + 0.5) * spacing[view.rows_axis]
            xs = (np.arange(plane.shape[1]) + 0.5) * spacing[view.cols_axis]
            ax.contour(xs, ys, plane, levels=[0.5], colors=colour, linewidths=1.2)


def draw_letters(ax: Any, view: PlaneView, colour: str = "yellow") -> None:
    """The patient directions at the panel's four edges (``gid="orientation-<letter>"``)."""
    left, right, top, bottom = view.letters
    for text, xy, align in (
        (left, (0.01, 0.5), ("left", "center")),
        (right, (0.99, 0.5), ("right", "center")),
        (top, (0.5, 0.99), ("center", "top")),
        (bottom, (0.5, 0.01), ("center", "bottom")),
    ):
        ax.text(*xy, text, transform=ax.transAxes, ha=align[0], va=align[1], color=colour, fontsize=11,
                fontweight="bold", gid=f"orientation-{text}")  # fmt: skip


def orthogonal_slices_figure(
    ct: Image,
    pet: Image | None,
    specimen: np.ndarray,
    tumour: np.ndarray,
    point_index: Sequence[int],
    title: str = "",
    ct_window: tuple[float, float] = (-300.0, 300.0),
    approach_mm: tuple[Sequence[float], Sequence[float]] | None = None,
    header: str = "",
) -> Any:
    """Three orthogonal slices through ``point_index`` (array order) as a matplotlib figure: CT with the specimen
    contour (blue) and tumour contour (orange); below, the fused PET-CT with a colour bar in the PET's units.
    Every panel has the patient directions at its edges (:func:`direction_letters`; coronal and sagittal planes
    are shown head up, as radiologists read them), a cross at the point and,
    given ``approach_mm`` (the tumour's closest point and the surface point it faces, LPS mm), the line between
    them projected onto the plane (``gid="closest-approach"``); a legend names the three colours. ``header`` is a
    line under the title (case, date, method)."""
    rows = 2 if pet is not None else 1
    fig, axes = plt.subplots(rows, 3, figsize=(12, 4.2 * rows + 0.3), squeeze=False)
    segment = None if approach_mm is None else ct.grid.world_to_index(np.asarray(approach_mm, dtype=float))
    overlay = None
    peak = (float(pet.array.max()) or 1.0) if pet is not None else 1.0
    for col, (name, axis) in enumerate(VIEWS):
        idx = int(point_index[axis])
        view = plane_view(ct, axis)
        mark = _in_plane(np.asarray(point_index, dtype=float), ct.spacing, axis)
        for row in range(rows):
            ax = axes[row][col]
            show_plane(ax, view, view.cut(ct.array, idx), cmap="gray", vmin=ct_window[0], vmax=ct_window[1],
                       interpolation="nearest")  # fmt: skip
            if row == 1 and pet is not None:
                plane = view.cut(pet.array, idx)
                overlay = show_plane(ax, view, np.ma.masked_less(plane, 0.05 * peak), cmap="hot", alpha=0.6, vmin=0,
                                     vmax=peak, interpolation="bilinear")  # fmt: skip
            draw_contours(ax, view, ct.spacing, idx, ((specimen, SPECIMEN_COLOUR), (tumour, TUMOUR_COLOUR)))
            if segment is not None:
                (x0, y0), (x1, y1) = (_in_plane(p, ct.spacing, axis) for p in segment)
                ax.plot([x0, x1], [y0, y1], color="lime", lw=1.6, gid="closest-approach")
            ax.plot(*mark, marker="+", color="lime", markersize=14, mew=2, gid="closest-point")
            draw_letters(ax, view)
            ax.set_title(f"{name} {'PET-CT' if row == 1 else 'CT'}", fontsize=10)
            ax.set_xlabel("mm")
    handles = [
        Line2D([], [], color=SPECIMEN_COLOUR, lw=1.5, label="specimen surface"),
        Line2D([], [], color=TUMOUR_COLOUR, lw=1.5, label="tumour"),
        Line2D([], [], color="lime", lw=1.6, marker="+", label="closest approach" if segment is not None else
               "closest point"),
    ]  # fmt: skip
    height = fig.get_figheight()  # the header's lines at fixed inches from the top, whatever the rows
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.995, 1 - 0.32 / height), ncols=3, fontsize=9,
               frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title, x=0.01, y=1 - 0.06 / height, ha="left", va="top", fontsize=12)
    if header:
        fig.text(0.01, 1 - 0.34 / height, header, fontsize=9, color="0.3", va="top")
    # a fixed grid instead of the tight layout: the panels are always the same, and measuring them costs a draw
    # (a fifth of the figure's time, which is on the command's critical path)
    right_edge = 0.93 if overlay is not None else 0.99
    fig.subplots_adjust(left=0.045, right=right_edge, bottom=0.3 / height, top=1 - 0.85 / height, wspace=0.22,
                        hspace=0.22)  # fmt: skip
    if overlay is not None and pet is not None:
        bar = fig.colorbar(overlay, ax=list(axes[1]), fraction=0.02, pad=0.01)
        bar.set_label(f"PET ({pet.units})" if pet.units else "PET")
    return fig


def orthogonal_slices(
    ct: Image,
    pet: Image | None,
    specimen: np.ndarray,
    tumour: np.ndarray,
    point_index: Sequence[int],
    path: str | Path,
    title: str = "",
    ct_window: tuple[float, float] = (-300.0, 300.0),
    approach_mm: tuple[Sequence[float], Sequence[float]] | None = None,
    header: str = "",
) -> Path:
    """:func:`orthogonal_slices_figure` written as a PNG at ``path``."""
    fig = orthogonal_slices_figure(ct, pet, specimen, tumour, point_index, title, ct_window, approach_mm, header)
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
