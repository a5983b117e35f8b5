"""The breast DCE-MRI report figure: the tumour outlined on the subtraction image in three planes (patient directions
at the edges, a colour bar) and on T1c, and the kinetics (tumour against the rest of the breast) over the
post-contrast phases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from scipy import ndimage

from breastseg.image import Image
from breastseg.report.figures import (
    TUMOUR_COLOUR,
    draw_contours,
    draw_letters,
    plane_view,
    plt,
    save_figure,
    show_plane,
)
from breastseg.report.figures import (
    VIEWS as _VIEWS,
)


def relative_enhancement_percent(pre: np.ndarray, post: Sequence[np.ndarray], region: np.ndarray) -> list[float]:
    """Mean signal of ``region`` at each post-contrast phase relative to its pre-contrast mean, in %."""
    s0 = float(np.mean(pre[region]))
    if s0 <= 0:
        return [float("nan")] * len(post)
    return [100.0 * (float(np.mean(p[region])) - s0) / s0 for p in post]


def dce_report_figure(
    pre: np.ndarray,
    post: Sequence[np.ndarray],
    post_times_s: Sequence[float],
    tumour: np.ndarray,
    breast: np.ndarray,
    grid: Image,
    title: str = "",
    t2: np.ndarray | None = None,
    header: str = "",
) -> Any:
    """The report figure as a matplotlib figure (arrays ``(z, y, x)`` on ``grid``'s grid, whose direction gives the
    patient directions at every panel's edges): the subtraction T1c₁ − T1 on the axial, coronal and sagittal planes
    through the tumour's centre with the tumour contour in orange and a colour bar (signal, arbitrary units); below,
    T1c₁ on the axial plane, a registered ``t2`` there too, and the kinetics: the mean relative enhancement (%) of
    the tumour and of the breast outside it at each post-contrast time (min)."""
    tumour = np.asarray(tumour, bool)
    centre = np.rint(ndimage.center_of_mass(tumour)).astype(int) if tumour.any() else np.array(pre.shape) // 2
    subtraction = np.asarray(post[0], float) - np.asarray(pre, float)
    low, high = (float(v) for v in np.percentile(subtraction[np.asarray(breast, bool)] if breast.any() else
                                                 subtraction, (1, 99.8)))  # fmt: skip
    fig, axes = plt.subplots(2, 3, figsize=(13.5, 9.2), squeeze=False)
    shown = None
    for col, (name, axis) in enumerate(_VIEWS):
        ax, view = axes[0][col], plane_view(grid, axis)
        idx = int(centre[axis])
        shown = show_plane(ax, view, view.cut(subtraction, idx), cmap="gray", vmin=min(low, 0.0), vmax=high)
        draw_contours(ax, view, grid.spacing, idx, ((tumour, TUMOUR_COLOUR),))
        draw_letters(ax, view)
        ax.set_title(f"{name} T1c − T1, slice {idx}", fontsize=10)
        ax.set_xlabel("mm")
    axial = plane_view(grid, 0)
    lower = [(np.asarray(post[0]), "axial T1c (first post-contrast)")]
    if t2 is not None:
        lower.append((np.asarray(t2), "axial T2 (registered)"))
    for ax, (volume, name) in zip(axes[1], lower, strict=False):
        plane = axial.cut(volume, int(centre[0]))
        show_plane(ax, axial, plane, cmap="gray", vmin=float(np.percentile(plane, 1)),
                   vmax=float(np.percentile(plane, 99.5)))  # fmt: skip
        draw_contours(ax, axial, grid.spacing, int(centre[0]), ((tumour, TUMOUR_COLOUR),))
        draw_letters(ax, axial)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("mm")
    if t2 is None:
        axes[1][1].set_axis_off()
    curves = axes[1][2]
    minutes = np.asarray(post_times_s, float) / 60.0
    rest = np.asarray(breast, bool) & ~tumour
    if tumour.any():
        curves.plot(minutes, relative_enhancement_percent(pre, post, tumour), "o-", color=TUMOUR_COLOUR, label="tumour",
                    gid="kinetics-tumour")  # fmt: skip
    if rest.any():
        curves.plot(minutes, relative_enhancement_percent(pre, post, rest), "s--", color="0.4", label="breast (rest)",
                    gid="kinetics-breast")  # fmt: skip
    curves.axhline(0.0, color="0.8", lw=0.8)
    curves.set_xlabel("post-contrast time (min)")
    curves.set_ylabel("enhancement relative to pre-contrast (%)")
    curves.set_title("kinetics", fontsize=10)
    curves.legend(fontsize=9)
    fig.legend(handles=[Line2D([], [], color=TUMOUR_COLOUR, lw=1.5, label="tumour (segmentation)")],
               loc="upper right", frameon=False, fontsize=9)  # fmt: skip
    if title:
        fig.suptitle(title, x=0.01, y=0.995, ha="left", va="top", fontsize=12)
    if header:
        fig.text(0.01, 0.962, header, fontsize=9, color="0.3", va="top")
    fig.subplots_adjust(left=0.05, right=0.92, bottom=0.06, top=0.92, wspace=0.25, hspace=0.25)
    if shown is not None:
        bar = fig.colorbar(shown, ax=list(axes[0]), fraction=0.02, pad=0.01)
        bar.set_label("T1c − T1 (signal, a.u.)")
    return fig


def write_dce_report(
    pre: np.ndarray,
    post: Sequence[np.ndarray],
    post_times_s: Sequence[float],
    tumour: np.ndarray,
    breast: np.ndarray,
    grid: Image,
    path: str | Path,
    title: str = "",
    t2: np.ndarray | None = None,
    header: str = "",
) -> Path:
    """:func:`dce_report_figure` written as a PNG at ``path``."""
    fig = dce_report_figure(pre, post, post_times_s, tumour, breast, grid, title, t2, header)
    return save_figure(fig, path, dpi=90, tight=False)
