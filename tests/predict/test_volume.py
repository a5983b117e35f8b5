"""3D prediction at the bundle's pixel size: the model grid, resampling there and back, with a known 'network'."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from breastseg.errors import InputError
from breastseg.image import Grid, Image
from breastseg.learn.bundle import EnsembleNet
from breastseg.learn.normalisation import Normalisation
from breastseg.predict.volume import (
    REFERENCE,
    VolumeInference,
    model_grid,
    predict_volume,
    resolve_device,
    resolve_precision,
)


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


def test_bfloat16_agrees_with_float32_and_auto_follows_the_hardware() -> None:
    """bfloat16 autocast changes a real (small, random) ResU-Net's probabilities by little and its masks by less."""
    from breastseg.nets.resunet import ResUNetConfig, build_resunet
    from breastseg.predict.slices import native_bfloat16, predict_batch

    torch.manual_seed(0)
    net = build_resunet(ResUNetConfig(depth=3, first_channels=8)).eval()
    x = np.random.default_rng(0).normal(size=(4, 2, 40, 48)).astype(np.float32)
    p32 = predict_batch([net], x, 4, "float32")
    p16 = predict_batch([net], x, 4, "bfloat16")
    assert p32.dtype == p16.dtype == np.float32 and p32.shape == (4, 40, 48)
    # bfloat16 keeps 8 mantissa bits (relative step 2**-8 ≈ 0.4 %): probabilities move by a few hundredths at most
    assert 0.0 < np.abs(p32 - p16).max() < 0.1
    assert np.mean((p32 > 0.5) == (p16 > 0.5)) > 0.98
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bfloat16" if native_bfloat16(cpu) else "float32")
    assert resolve_precision("float32", cpu) == "float32"
    with pytest.raises(InputError, match="precision 'half'"):
        resolve_precision("half", cpu)


def test_device_names() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="not a torch device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")
