"""The PET MIP figure reads as nuclear medicine reads it: head up, the patient's right on the viewer's left whatever
the array's direction matrix, every lesion numbered at its centroid with the label ``lesions.csv`` gives it, a
colour bar in the PET's units, and the response figure headed by the PERCIST category — or by "not assessable",
never a category, after a failed registration. Checked on the figure's artists against hand-placed lesions."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from breastseg.image import Image
from breastseg.workflows.petct.biomarkers import compute_biomarkers
from breastseg.workflows.petct.figures import MipPanel, mip_panels_figure
from breastseg.workflows.petct.longitudinal import response_title
from breastseg.workflows.petct.readout import write_biomarkers
from breastseg.workflows.petct.response import PercistResult

SHAPE = (40, 20, 30)  # (z, y, x)
SPACING = (4.0, 4.0, 3.0)  # mm, array order


def _scan(direction: np.ndarray) -> tuple[Image, np.ndarray]:
    """A PET (SUVbw) with two cubic lesions: one near array x index 4 and z index 30, one near x 24, z 8."""
    suv = np.ones(SHAPE, np.float32)
    lesions = np.zeros(SHAPE, bool)
    lesions[29:32, 9:12, 3:6] = True  # centroid (30, 10, 4)
    lesions[7:10, 9:12, 23:26] = True  # centroid (8, 10, 24)
    suv[lesions] = 6.0
    image = Image(suv, spacing=SPACING, origin=(-45.0, -40.0, -80.0), direction=direction, modality="PT",
                  units="SUVbw")  # fmt: skip
    return image, lesions


def _labels(fig) -> dict[str, tuple[float, float]]:  # type: ignore[no-untyped-def]
    (ax,) = [a for a in fig.axes if a.get_title()]
    return {t.get_gid(): t.xy for t in ax.texts if str(t.get_gid()).startswith("lesion-")}


def test_lesion_numbers_sit_at_their_centroids_and_match_the_csv(tmp_path: Path) -> None:
    pet, lesions = _scan(np.eye(3))
    result = compute_biomarkers(pet.array, None, lesions, pet.spacing, sul_missing="no height")
    written = write_biomarkers(result, pet, tmp_path, lesions=lesions)
    assert written["mip"].stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "lesions.csv").open()))
    fig = mip_panels_figure([MipPanel("coronal MIP", pet, lesions, result.lesions)])
    labels = _labels(fig)
    assert set(labels) == {f"lesion-{row['label']}" for row in rows} and len(rows) == 2
    for row in rows:
        x_mm, z_mm = float(row["centroid_x_mm"]), float(row["centroid_z_mm"])
        # by hand, identity direction: column from the patient's right (x index 0) at 3 mm per voxel; row from the
        # head: z index 39 (the top) is row 0, at 4 mm per voxel
        col = (x_mm - (-45.0)) / 3.0
        row_from_head = (SHAPE[0] - 1) - (z_mm - (-80.0)) / 4.0
        assert labels[f"lesion-{row['label']}"] == pytest.approx(((col + 0.5) * 3.0, (row_from_head + 0.5) * 4.0))
    (bar,) = [a for a in fig.axes if not a.get_title()]
    assert "SUVbw" in bar.get_ylabel()


def test_the_patients_right_is_on_the_viewers_left_whatever_the_array_direction() -> None:
    positions = {}
    for name, direction in (("LPS", np.eye(3)), ("RAS-like", np.diag([-1.0, -1.0, 1.0])), ("feet-first",
                            np.diag([1.0, 1.0, -1.0]))):  # fmt: skip
        pet, lesions = _scan(direction)
        result = compute_biomarkers(pet.array, None, lesions, pet.spacing, sul_missing="no height")
        fig = mip_panels_figure([MipPanel("MIP", pet, lesions, result.lesions)])
        by_world = {}
        for lesion in result.lesions:
            world = pet.grid.index_to_world(lesion.centroid_voxel)  # LPS mm
            by_world[(round(world[0]), round(world[2]))] = _labels(fig)[f"lesion-{lesion.label}"]
        positions[name] = by_world
        (ax,) = [a for a in fig.axes if a.get_title()]
        letters = {t.get_position(): t.get_text() for t in ax.texts if str(t.get_gid()).startswith("orientation")}
        assert letters[(0.02, 0.5)] == "R" and letters[(0.5, 0.99)] == "S"
        width = SHAPE[2] * 3.0
        # the lesion furthest to the patient's right (smallest LPS x) is nearer the viewer's left edge;
        # the highest (largest LPS z) nearer the top (panel y grows downwards)
        right_most = min(by_world, key=lambda k: k[0])
        head_most = max(by_world, key=lambda k: k[1])
        assert by_world[right_most][0] < width / 2, name
        assert by_world[head_most][1] == min(p[1] for p in by_world.values()), name


def _percist(category: str, reason: str) -> PercistResult:
    return PercistResult(category, 6.0, 2.4, -60.0, -3.6, False, reason)  # type: ignore[arg-type]


def test_response_title_names_the_category_or_refuses_one() -> None:
    passed = SimpleNamespace(assessable=True, percist=_percist("PMR", "SULpeak fell 60 %"), new_lesion_count=0)
    title = response_title(passed)  # type: ignore[arg-type]
    assert title.startswith("PERCIST: PMR") and "6.00 → 2.40 (-60 %)" in title and "0 new lesions" in title
    failed = SimpleNamespace(
        assessable=False, percist=_percist("not assessable", "registration failed: overlap 0.12 < 0.5"),
        new_lesion_count=None,
    )  # fmt: skip
    title = response_title(failed)  # type: ignore[arg-type]
    assert "not assessable" in title and "overlap 0.12" in title
    assert not any(c in title for c in ("PMR", "CMR", "SMD", "PMD", "new lesion"))
