"""The DCE-MRI report figure shows the tumour in three planes through its centre with patient directions and a
colour bar, and the kinetics as the hand-computed relative enhancement — checked on the figure's artists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from breastseg.image import Image
from breastseg.workflows.mri.figures import dce_report_figure, write_dce_report

SHAPE = (16, 40, 48)  # (z, y, x)


def _exam() -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray, Image]:
    zz, yy, xx = np.indices(SHAPE)
    breast = (yy > 8) & (xx > 4) & (xx < 44)
    tumour = (zz - 9) ** 2 + ((yy - 22) / 2) ** 2 + ((xx - 30) / 2) ** 2 <= 9  # centre (9, 22, 30)
    pre = np.where(breast, 100.0, 5.0)
    # tumour: +120 %, +150 %, +140 % (washout late); breast: +10 %, +15 %, +20 %
    post = [np.where(tumour, 100.0 * (1 + t), np.where(breast, 100.0 * (1 + b), 5.0))
            for t, b in ((1.2, 0.10), (1.5, 0.15), (1.4, 0.20))]  # fmt: skip
    grid = Image(pre.astype(np.float32), spacing=(3.0, 0.8, 0.8), origin=(0.0, 0.0, 0.0), direction=np.eye(3),
                 modality="MR")  # fmt: skip
    return pre, post, tumour, breast, grid


def test_three_planes_through_the_tumour_centre_with_directions_and_kinetics(tmp_path: Path) -> None:
    pre, post, tumour, breast, grid = _exam()
    fig = dce_report_figure(pre, post, [90.0, 180.0, 270.0], tumour, breast, grid, title="t", header="exam e1")
    titles = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    for name, index in (("axial", 9), ("coronal", 22), ("sagittal", 30)):
        ax = titles[f"{name} T1c − T1, slice {index}"]  # the plane through the tumour's centre
        letters = {t.get_text() for t in ax.texts if str(t.get_gid()).startswith("orientation")}
        assert letters == {"axial": {"R", "L", "A", "P"}, "coronal": {"R", "L", "S", "I"},
                           "sagittal": {"A", "P", "S", "I"}}[name]  # fmt: skip
        assert ax.collections, f"no tumour contour on the {name} plane"
    (bar,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("T1c − T1")]
    assert "a.u." in bar.get_ylabel()
    curves = titles["kinetics"]
    lines = {line.get_gid(): line for line in curves.lines if line.get_gid()}
    np.testing.assert_allclose(lines["kinetics-tumour"].get_xdata(), [1.5, 3.0, 4.5])
    np.testing.assert_allclose(lines["kinetics-tumour"].get_ydata(), [120.0, 150.0, 140.0])
    np.testing.assert_allclose(lines["kinetics-breast"].get_ydata(), [10.0, 15.0, 20.0])
    assert "axial T2 (registered)" not in titles  # no T2 given, no T2 panel
    path = write_dce_report(pre, post, [90.0, 180.0, 270.0], tumour, breast, grid, tmp_path / "r.png", t2=pre)
    assert path.stat().st_size > 10_000


def test_no_tumour_still_draws_the_exam_at_its_centre() -> None:
    pre, post, tumour, breast, grid = _exam()
    fig = dce_report_figure(pre, post, [90.0, 180.0, 270.0], np.zeros(SHAPE, bool), breast, grid)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert "axial T1c − T1, slice 8" in titles
    kinetics = next(ax for ax in fig.axes if ax.get_title() == "kinetics")
    assert {line.get_gid() for line in kinetics.lines} >= {"kinetics-breast"}
    assert "kinetics-tumour" not in {line.get_gid() for line in kinetics.lines}
    # the whole breast now, the unsegmented tumour in it: 10 % everywhere but +120 % on the tumour's voxels
    share = (tumour & breast).sum() / breast.sum()
    assert kinetics.lines[0].get_ydata()[0] == pytest.approx(10.0 + share * (120.0 - 10.0))
