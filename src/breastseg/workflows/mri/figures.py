"""The breast DCE-MRI report figure: the tumour outlined on T1c and on the subtraction image at its largest slice,
and the enhancement curves (tumour against the rest of the breast) over the post-contrast phases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from breastseg.report.figures import TUMOUR_COLOUR, plt, save_figure


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
    spacing: Sequence[float],
    path: str | Path,
    title: str = "",
    t2: np.ndarray | None = None,
) -> Path:
    """Three panels (arrays ``(z, y, x)`` on one grid): T1c₁ and the subtraction T1c₁ − T1 at the slice (z) with
    the most tumour, the tumour contour in orange; the mean relative enhancement (%) of the tumour and of the
    breast outside it at each post-contrast time (min). A registered ``t2`` adds a fourth panel, outlined too."""
    tumour = np.asarray(tumour, bool)
    z = int(np.argmax(tumour.sum(axis=(1, 2)))) if tumour.any() else pre.shape[0] // 2
    extent = [0, pre.shape[2] * spacing[2], pre.shape[1] * spacing[1], 0]
    panels = [(post[0][z], "T1c (first post-contrast)"), (post[0][z] - pre[z], "T1c − T1")]
    if t2 is not None:
        panels.append((np.asarray(t2)[z], "T2 (registered)"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.7 * (len(panels) + 1), 4.4))
    for ax, (image, name) in zip(axes, panels, strict=False):
        ax.imshow(
            image,
            cmap="gray",
            extent=extent,
            vmin=float(np.percentile(image, 1)),
            vmax=float(np.percentile(image, 99.5)),
        )
        if tumour[z].any():
            ax.contour(
                tumour[z].astype(float),
                levels=[0.5],
                colors=[TUMOUR_COLOUR],
                linewidths=1.2,
                extent=extent,
                origin="upper",
            )
        ax.set_title(f"{name}, slice {z}")
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
    curves = axes[-1]
    minutes = np.asarray(post_times_s, float) / 60.0
    rest = np.asarray(breast, bool) & ~tumour
    if tumour.any():
        curves.plot(minutes, relative_enhancement_percent(pre, post, tumour), "o-", color=TUMOUR_COLOUR, label="tumour")
    if rest.any():
        curves.plot(minutes, relative_enhancement_percent(pre, post, rest), "s--", color="0.4", label="breast (rest)")
    curves.axhline(0.0, color="0.8", lw=0.8)
    curves.set_xlabel("post-contrast time (min)")
    curves.set_ylabel("enhancement relative to pre-contrast (%)")
    curves.set_title("Enhancement curves")
    curves.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
