"""The specimen report figure says what it shows: patient directions from the image's direction matrix, the closest
approach drawn between the result's two points on every plane, a PET colour bar in the PET's units, a legend, and
a title and header with the read-out and the case — checked on the figure's artists, not its pixels."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from breastseg.image import Image
from breastseg.report.figures import direction_letters, orthogonal_slices_figure
from breastseg.workflows.specimen.report_text import figure_header, figure_title


def _image(array: np.ndarray, direction: np.ndarray | None = None, units: str = "HU") -> Image:
    return Image(
        array.astype(np.float32),
        spacing=(0.5, 0.4, 0.3),
        origin=(10.0, -20.0, 5.0),
        direction=np.eye(3) if direction is None else direction,
        modality="CT",
        units=units,
    )


def test_direction_letters_follow_the_direction_matrix() -> None:
    plain = _image(np.zeros((4, 5, 6)))
    # array axes (z, y, x); LPS: +x is the patient's left, +y posterior, +z superior
    assert direction_letters(plain, 2) == ("R", "L")
    assert direction_letters(plain, 1) == ("A", "P")
    assert direction_letters(plain, 0) == ("I", "S")
    flipped = _image(np.zeros((4, 5, 6)), np.diag([-1.0, -1.0, 1.0]))  # a head-first-supine "RAS-like" layout
    assert direction_letters(flipped, 2) == ("L", "R") and direction_letters(flipped, 1) == ("P", "A")
    # the array's x axis runs towards the patient's feet, its z axis towards the patient's left
    permuted = _image(np.zeros((4, 5, 6)), np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]))
    assert direction_letters(permuted, 2) == ("S", "I") and direction_letters(permuted, 0) == ("R", "L")


def test_the_figure_draws_the_closest_approach_between_the_results_points() -> None:
    shape = (20, 24, 28)
    zz, yy, xx = np.indices(shape)
    specimen = (zz > 2) & (zz < 17) & (yy > 2) & (yy < 21) & (xx > 2) & (xx < 25)
    tumour = (zz - 10) ** 2 + (yy - 12) ** 2 + (xx - 20) ** 2 <= 9
    ct = _image(np.where(specimen, 40.0, -900.0))
    pet = _image(np.where(tumour, 6.0, 1.0), units="SUL")
    closest_index, surface_index = np.array([10, 12, 23]), np.array([10, 12, 25])
    world = [ct.grid.index_to_world(i).tolist() for i in (closest_index, surface_index)]
    # hand check of the world points on this identity-direction grid: origin (LPS x, y, z) + index × spacing
    # (spacing in array order z, y, x)
    assert world[0] == pytest.approx([10.0 + 23 * 0.3, -20.0 + 12 * 0.4, 5.0 + 10 * 0.5])
    fig = orthogonal_slices_figure(
        ct, pet, specimen, tumour, closest_index, title="margin NEGATIVE", approach_mm=(world[0], world[1]),
        header="patient P1",
    )  # fmt: skip
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 6
    spacing = ct.spacing
    for ax in panels:
        view = ax.get_title().split()[0]
        axis = {"axial": 0, "coronal": 1, "sagittal": 2}[view]
        rows_axis, cols_axis = [a for a in range(3) if a != axis]
        (line,) = [a for a in ax.lines if a.get_gid() == "closest-approach"]
        xs, ys = line.get_data()
        # the line's ends are the two points, at their voxel centres on this panel's mm axes
        expected_x = [
            (closest_index[cols_axis] + 0.5) * spacing[cols_axis],
            (surface_index[cols_axis] + 0.5) * spacing[cols_axis],
        ]
        expected_y = [
            (closest_index[rows_axis] + 0.5) * spacing[rows_axis],
            (surface_index[rows_axis] + 0.5) * spacing[rows_axis],
        ]
        np.testing.assert_allclose(xs, expected_x, atol=1e-9)
        np.testing.assert_allclose(ys, expected_y, atol=1e-9)
        letters = {t.get_position(): t.get_text() for t in ax.texts if str(t.get_gid()).startswith("orientation")}
        at_top, at_left = letters[(0.5, 0.99)], letters[(0.01, 0.5)]
        if view == "axial":  # the patient's right on the viewer's left, anterior up
            assert (at_left, at_top) == ("R", "A") and ax.get_ylim()[0] > ax.get_ylim()[1]
        else:  # coronal and sagittal head up: superior at the top, the mm axis running upwards from the feet
            assert at_top == "S" and letters[(0.5, 0.01)] == "I" and ax.get_ylim()[0] < ax.get_ylim()[1]
            assert at_left == ("R" if view == "coronal" else "A")
    bars = [ax for ax in fig.axes if not ax.get_title() and ax.get_ylabel()]
    assert [b.get_ylabel() for b in bars] == ["PET (SUL)"]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["specimen surface", "tumour", "closest approach"]
    texts = [t.get_text() for t in fig.texts]
    assert "patient P1" in texts and fig._suptitle.get_text() == "margin NEGATIVE"


def test_title_and_header_carry_the_read_out_and_the_case() -> None:
    result = {
        "margin_status": "negative",
        "min_margin_mm": 1.0422,
        "closest_face": "right",
        "margin_interval_mm": [0.8411, 1.6249],
        "positive_margin_threshold_mm": 0.1,
        "method": "threshold",
        "model": {"path": "/opt/venv/lib/python3.11/site-packages/breastseg/models/specimen_threshold_petct.json"},
        "config": {"patient_id": "P7"},
        "inputs": {"ct": "/data/case7/ct.nii.gz"},
    }
    assert figure_title(result) == "margin NEGATIVE: 1.04 mm at the right face (0.84–1.62 mm); positive when ≤ 0.1 mm"
    header = figure_header(result, datetime.date(2026, 12, 3))
    assert (
        header == "patient P7 · CT ct.nii.gz · method threshold (specimen_threshold_petct.json) · assessed 2026-12-03"
    )
    assert figure_title({"margin_status": "negative", "min_margin_mm": None}) == "margin NEGATIVE"
