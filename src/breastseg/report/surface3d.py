"""A small 3D view of the specimen and the tumour inside it: their surfaces by marching cubes (scikit-image) in
patient LPS mm, the specimen translucent blue, the tumour orange, and the closest approach between them drawn as
a line — for a surgeon, where in the specimen the tumour comes nearest its surface. PNG, atomic.

Axes are patient coordinates (LPS: +x the patient's left, +y posterior, +z superior), so the points match
``result.json``'s ``closest_point_mm`` and ``surface_point_mm`` and the DICOM SR's SCOORD3D.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d.art3d import Poly3DCollection
from skimage.measure import marching_cubes

from breastseg.image import Grid
from breastseg.report.figures import SPECIMEN_COLOUR, TUMOUR_COLOUR, plt, save_figure

#: the coarsest a surface is sampled: at most this many marching-cubes steps along the mask's longest side
MAX_STEPS = 48
#: the steepest the camera looks (degrees): steeper, and the axes fold onto each other
MAX_ELEVATION = 40.0


def mask_surface(mask: np.ndarray, grid: Grid, max_steps: int = MAX_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """The boundary of ``mask`` (on ``grid``, array order ``(z, y, x)``) as triangles: ``(vertices, faces)`` with
    vertices in patient LPS mm. Marching cubes at the 0.5 level on the mask padded by one voxel (so a mask that
    touches the array edge is closed), sampled every ``step`` voxels so that the longest side has at most
    ``max_steps`` steps (a figure, not a measurement). An empty mask has no triangles."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros((0, 3)), np.zeros((0, 3), int)
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
    start = np.array([b.start for b in box], float)
    padded = np.pad(mask[box], 1).astype(np.float32)
    step = max(1, int(np.ceil(max(padded.shape) / max_steps)))
    if min(padded.shape) <= 2 * step:
        step = 1
    vertices, faces, _, _ = marching_cubes(padded, level=0.5, step_size=step, allow_degenerate=False)
    index = vertices - 1.0 + start  # back to the grid's array indices (continuous)
    return grid.index_to_world(index), faces


def viewpoint(
    approach_mm: tuple[Sequence[float], Sequence[float]] | None, off_axis_deg: float = 50.0
) -> tuple[float, float]:
    """``(elevation, azimuth)`` in degrees of a camera on the side of the closest face: turned ``off_axis_deg``
    from the tumour-to-surface direction (towards the head), so that the approach line is seen across, not end on;
    the elevation kept within ±:data:`MAX_ELEVATION`. Without an approach, matplotlib's usual oblique view."""
    if approach_mm is None:
        return 20.0, -60.0
    direction = np.subtract(approach_mm[1], approach_mm[0]).astype(float)
    norm = float(np.linalg.norm(direction))
    if norm == 0:
        return 20.0, -60.0
    n = direction / norm
    up = np.array([0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = up - n * float(up @ n)
    u /= np.linalg.norm(u)
    angle = np.radians(off_axis_deg)
    camera = np.cos(angle) * n + np.sin(angle) * u
    elevation = float(np.clip(np.degrees(np.arcsin(np.clip(camera[2], -1, 1))), -MAX_ELEVATION, MAX_ELEVATION))
    return elevation, float(np.degrees(np.arctan2(camera[1], camera[0])))


def surface_figure(
    specimen: np.ndarray,
    tumour: np.ndarray,
    grid: Grid,
    approach_mm: tuple[Sequence[float], Sequence[float]] | None = None,
    title: str = "",
    max_steps: int = MAX_STEPS,
) -> Any:
    """The 3D view as a matplotlib figure: the specimen's surface (translucent blue, ``gid="specimen-surface"``)
    and the tumour's (orange, ``gid="tumour-surface"``) in LPS mm, and given ``approach_mm`` (the tumour's
    closest point and the surface point it faces, LPS mm) the line between them (``gid="closest-approach"``)
    with its two ends marked. Equal mm on the three axes; ``max_steps`` as :func:`mask_surface`."""
    fig = plt.figure(figsize=(5.2, 5.0))
    ax = fig.add_subplot(projection="3d")
    ax.computed_zorder = False  # drawn in order: the translucent specimen, the tumour in it, the line on top
    spans = []
    for mask, colour, alpha, gid in (
        (specimen, SPECIMEN_COLOUR, 0.12, "specimen-surface"),
        (tumour, TUMOUR_COLOUR, 0.85, "tumour-surface"),
    ):
        vertices, faces = mask_surface(mask, grid, max_steps)
        if len(faces):
            mesh = Poly3DCollection(vertices[faces], facecolor=colour, edgecolor="none", alpha=alpha, gid=gid)
            mesh.set_gid(gid)
            ax.add_collection3d(mesh)
            spans.append(vertices)
    if approach_mm is not None:
        ends = np.asarray(approach_mm, float)
        ax.plot(ends[:, 0], ends[:, 1], ends[:, 2], color="lime", lw=3, marker="o", ms=7, gid="closest-approach",
                zorder=10)  # fmt: skip
        spans.append(ends)
    if spans:
        points = np.concatenate(spans)
        centre = (points.min(axis=0) + points.max(axis=0)) / 2
        half = float((points.max(axis=0) - points.min(axis=0)).max()) / 2 or 1.0
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x (mm, R → L)", fontsize=8)
    ax.set_ylabel("y (mm, A → P)", fontsize=8)
    ax.set_zlabel("z (mm, I → S)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.view_init(*viewpoint(approach_mm))
    handles = [
        Line2D([], [], color=SPECIMEN_COLOUR, lw=4, alpha=0.4, label="specimen"),
        Line2D([], [], color=TUMOUR_COLOUR, lw=4, label="tumour"),
    ]
    if approach_mm is not None:
        handles.append(Line2D([], [], color="lime", lw=2.5, marker="o", ms=4, label="closest approach"))
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def write_surface_figure(
    specimen: np.ndarray,
    tumour: np.ndarray,
    grid: Grid,
    path: str | Path,
    approach_mm: tuple[Sequence[float], Sequence[float]] | None = None,
    title: str = "",
    max_steps: int = MAX_STEPS,
) -> Path:
    """:func:`surface_figure` written as a PNG at ``path``."""
    fig = surface_figure(specimen, tumour, grid, approach_mm, title, max_steps)
    return save_figure(fig, path, dpi=90, tight=False)
