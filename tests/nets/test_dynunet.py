"""nnU-Net's topology rule for the 3D DynUNet, checked against plans worked out by hand."""

from __future__ import annotations

import json

import pytest
import torch

from breastseg.errors import InputError
from breastseg.nets import DynUNetConfig, net_config_from_dict, net_config_to_dict, plan_dynunet


def test_isotropic_patch_halves_every_axis_down_to_four_voxels() -> None:
    # 64 → 32 → 16 → 8 → 4: four halvings, then 4 < 8 stops; five levels of kernel 3
    plan = plan_dynunet((64, 64, 64), (4.0, 4.0, 4.0), in_channels=2, base_filters=8)
    assert plan.strides == ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2))
    assert plan.kernels == ((3, 3, 3),) * 5
    assert plan.filters == (8, 16, 32, 64, 128)
    assert plan.axis_multiples == (16, 16, 16)


def test_anisotropic_axis_waits_until_the_others_catch_up() -> None:
    # spacing (3, 0.8, 0.8) mm: z is 3.75x coarser, so level 0 convolves in-plane only (kernel 1 on z) and
    # halves y, x; then z (1.875x) joins; at z = 4 voxels only y, x halve; at most 6 levels; filters capped at 320
    plan = plan_dynunet((32, 128, 128), (3.0, 0.8, 0.8), in_channels=2)
    assert plan.strides == ((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2))
    assert plan.kernels == ((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3))
    assert plan.filters == (32, 64, 128, 256, 320, 320)
    assert plan.axis_multiples == (8, 32, 32)


def test_network_keeps_the_patch_shape_and_gives_two_class_logits() -> None:
    plan = plan_dynunet((16, 32, 24), (4.0, 2.0, 2.0), in_channels=4, base_filters=4)
    out = plan.build()(torch.zeros(1, 4, 16, 32, 24))
    assert out.shape == (1, 2, 16, 32, 24)


def test_plan_round_trips_through_the_model_file_json() -> None:
    plan = plan_dynunet((32, 32, 32), (4.0, 4.0, 4.0), in_channels=2, base_filters=8)
    back = net_config_from_dict(json.loads(json.dumps(net_config_to_dict(plan))))
    assert isinstance(back, DynUNetConfig) and back == plan


def test_too_small_patch_is_refused() -> None:
    with pytest.raises(InputError, match="too small"):
        plan_dynunet((4, 6, 6), (1.0, 1.0, 1.0), in_channels=2)
