"""3D prediction at the bundle's pixel size: the model grid, resampling there and back, with a known 'network'."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from breastseg.image import Grid, Image
from breastseg.workflows.specimen.bundle import EnsembleNet
from breastseg.workflows.specimen.inference import (
    REFERENCE,
    VolumeInference,
    model_grid,
    predict_volume,
)
from breastseg.workflows.specimen.normalisation import Normalisation


class Identity(nn.Module):
    """Tumour probability = the first input channel (the normalised CT)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, :1].clamp(1e-6, 1 - 1e-6)
        return torch.cat([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


def _grid(shape: tuple[int, int, int], spacing: float) -> Grid:
    return Grid(shape, (spacing,) * 3, (-3.0, 2.0, 5.0), np.eye(3))


def test_model_grid_keeps_the_field_of_view_at_the_bundle_pixel_size() -> None:
    grid = _grid((40, 50, 60), 0.1)
    work = model_grid(grid, 0.2)
    assert work.shape == (20, 25, 30) and work.spacing == (0.2, 0.2, 0.2)
    # the outer voxel edges stay: first edge at origin − spacing/2 on both grids
    np.testing.assert_allclose(np.asarray(work.origin) - 0.1, np.asarray(grid.origin) - 0.05, atol=1e-9)
    assert model_grid(grid, None) is grid and model_grid(grid, 0.101) is grid


@pytest.mark.parametrize("spacing", [None, 0.2])
def test_predict_volume_returns_the_probability_on_the_input_grid(spacing: float | None) -> None:
    grid = _grid((40, 44, 48), 0.1)
    z, y, x = np.meshgrid(*[np.arange(n) * 0.1 for n in grid.shape], indexing="ij")
    hu = (-100.0 + 20.0 * z + 15.0 * y + 10.0 * x).astype(np.float32)  # smooth: linear in mm
    ct = Image(hu, grid.spacing, grid.origin, grid.direction)
    pet = ct.with_array(np.ones_like(hu))
    tissue = np.zeros(grid.shape, bool)
    tissue[5:35, 6:38, 7:41] = True
    norm = Normalisation(("ct", "pet"), -150.0, 100.0)
    member = EnsembleNet(Identity(), norm, 4)
    out = predict_volume([member, member], ct, pet, tissue, spacing, REFERENCE)
    expected = norm.apply(hu, pet.array, 1.0)[0]
    assert out.probability.shape == grid.shape and out.probability[~tissue].max() == 0.0
    assert out.model_grid.shape == (grid.shape if spacing is None else (20, 22, 24))
    assert len(out.member_probabilities) == 2 and out.member_probabilities[0].shape == out.model_grid.shape
    # deep inside the tissue the linear field survives resampling to 0.2 mm and back up to interpolation
    inner = np.zeros(grid.shape, bool)
    inner[8:32, 9:35, 10:38] = True
    err = np.abs(out.probability - expected)[inner].max()
    assert err < (1e-5 if spacing is None else 0.01)
    fast = predict_volume([member], ct, pet, tissue, spacing, VolumeInference(slice_step=3))
    assert np.abs(fast.probability - out.probability)[inner].max() < 0.01
