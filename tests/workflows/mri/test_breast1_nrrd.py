"""Smoke test on real data: pyradiomics' breast MRI sub-volume (NRRD) and its lesion label read with their
geometry, and the read-outs on the label (``../shared/data/mri-breast1``; skipped without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from breastseg.io import read_image
from breastseg.workflows.mri.readouts import tumour_readout


def test_breast1_geometry_and_lesion_readouts(data_dir: Path) -> None:
    folder = data_dir / "mri-breast1"
    if not (folder / "breast1_image.nrrd").is_file():
        pytest.skip(f"{folder}: breast1 NRRD not present (see its SOURCE.md)")
    image = read_image(folder / "breast1_image.nrrd")
    label = read_image(folder / "breast1_label.nrrd")
    # SOURCE.md: 45 × 120 × 21 voxels (x, y, z), 0.664062 × 0.664062 × 2.1 mm, origin (−116.54, −48.14, 9.45)
    assert image.shape == (21, 120, 45)
    assert image.spacing == pytest.approx((2.1, 0.664062, 0.664062), abs=1e-5)
    assert image.origin == pytest.approx((-116.54, -48.14, 9.45), abs=0.01)
    assert label.grid.same_as(image.grid)
    lesion = label.array > 0
    assert int(lesion.sum()) == 143
    r = tumour_readout(lesion, label.spacing, pre=image.array, post=[])
    assert r.volume_ml == pytest.approx(143 * 2.1 * 0.664062**2 / 1000, rel=1e-4)  # ≈ 0.13 ml
    assert 2.0 < r.longest_diameter_mm < 20.0 and r.curve_type is None  # one time point: no kinetics
