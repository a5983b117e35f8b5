"""A single-breast DCE-MRI phantom with known tumour, kinetics and motion (Hirsch et al. 2022's inputs).

Geometry (array order ``(z, y, x)``, identity direction, so y is LPS y: anterior → posterior with the chest wall
at high y; z is the thick-slice axis): a half-ellipsoid breast on a pectoral muscle slab,
air elsewhere; inside, fat-suppressed fat (dark) and fibroglandular tissue (a smoothed random field thresholded,
brighter). Fat-saturated T1 intensities (arbitrary units): air 2, fat 60, fibroglandular 180, muscle 140,
malignant tumour 170, benign focus 175; multiplicative coil-sensitivity shading and Gaussian noise.

Enhancement, relative to the pre-contrast signal S₀, at post-contrast time t (s after the first post-contrast
phase's time t₁ — the kinetic phase the DCE-out feature measures is *linear* in time, so its slope is exact):

* tumour (wash-out): ``S₀ (1 + E_in) − S₀ · w · (t − t₁) / 60``, E_in = 1.2, w = ``washout_per_min``;
* benign enhancing focus (persistent): ``S₀ (1 + 0.7) + S₀ · p · (t − t₁) / 60``, p = ``persistent_per_min``;
* fibroglandular background parenchymal enhancement (persistent, mild): E_in = ``bpe``, slope p / 3;
* fat, muscle and air: no enhancement (muscle: E_in 0.3, flat).

So DCE-in / S₀ and DCE-out / S₀ are known per tissue (``truth.json`` → ``kinetics``). Motion: each phase after
the pre-contrast is moved by a small rigid transform (rotation about z, shift; recorded as the map from the
phase's voxel positions to the pre-contrast's) and optionally a smooth deformation; the masks are on the
*first post-contrast* (the reference of the study's registration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.image import Grid, Image
from breastseg.phantoms.base import Phantom
from breastseg.phantoms.shapes import ellipsoid_level, irregular_blob, smooth_field

INTENSITY = {"air": 2.0, "fat": 60.0, "fibroglandular": 180.0, "muscle": 140.0, "tumour": 170.0, "benign": 175.0}


@dataclass(frozen=True)
class DcePhantomConfig:
    """Knobs of :func:`make_dce_phantom` (sizes in mm, times in s, slopes per minute relative to S₀)."""

    seed: int = 0
    shape: tuple[int, int, int] = (24, 96, 112)
    spacing_mm: tuple[float, float, float] = (3.0, 1.2, 1.2)
    post_times_s: tuple[float, ...] = (90.0, 180.0, 270.0, 360.0, 450.0)
    tumour_radius_mm: float = 9.0
    benign_foci: int = 2
    washout_per_min: float = 0.12
    persistent_per_min: float = 0.10
    bpe: float = 0.25
    noise_sd: float = 3.0
    motion_mm: float = 1.5
    motion_deg: float = 1.5
    deformation_mm: float = 0.0
    fibroglandular_fraction: float = 0.35
    tumour_centre_fraction: tuple[float, float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _grid(cfg: DcePhantomConfig) -> Grid:
    return Grid(cfg.shape, cfg.spacing_mm, (0.0, 0.0, 0.0), np.eye(3))


def _warp(array: np.ndarray, matrix: np.ndarray, offset: np.ndarray, order: int) -> np.ndarray:
    return ndimage.affine_transform(array, matrix, offset, order=order, mode="nearest")


def make_dce_phantom(cfg: DcePhantomConfig | None = None) -> Phantom:
    """Pre-contrast ``t1``, post-contrast ``t1c_1`` … ``t1c_N`` (each moved by its own motion), and the masks
    ``tumour``, ``benign``, ``breast`` on the first post-contrast's grid; truth in ``Phantom.truth``."""
    cfg = cfg or DcePhantomConfig()
    rng = np.random.default_rng(cfg.seed)
    grid = _grid(cfg)
    nz, ny, nx = cfg.shape
    # breast: half-ellipsoid in front of the chest wall (LPS: +y is posterior, so the wall is at high y); the
    # pectoral muscle slab behind it
    wall = ny - 1 - int(0.15 * ny)
    radii_mm = (0.45 * nz * cfg.spacing_mm[0], 0.8 * ny * cfg.spacing_mm[1], 0.42 * nx * cfg.spacing_mm[2])
    level = ellipsoid_level(grid, ((nz - 1) / 2, wall, (nx - 1) / 2), radii_mm)
    y_index = np.arange(ny).reshape(1, -1, 1)
    breast = (level < 1.0) & (y_index <= wall)
    muscle = np.broadcast_to(y_index > wall, cfg.shape).copy()
    fg_field = smooth_field(grid, 12.0, rng)
    fg_cut = np.quantile(fg_field[breast], 1.0 - cfg.fibroglandular_fraction)
    fibroglandular = breast & (fg_field > fg_cut)
    # tumour inside the breast, away from the skin and the wall
    inner = ndimage.distance_transform_edt(breast, sampling=cfg.spacing_mm) > 1.2 * cfg.tumour_radius_mm
    candidates = np.argwhere(inner)
    if not len(candidates):
        raise InputError(f"DCE phantom: a {cfg.tumour_radius_mm} mm tumour does not fit a breast of shape {cfg.shape}")
    if cfg.tumour_centre_fraction is not None:
        centre = np.asarray(cfg.tumour_centre_fraction) * (np.asarray(cfg.shape) - 1)
    else:
        centre = candidates[rng.integers(len(candidates))].astype(float)
    radii = np.array([cfg.tumour_radius_mm * 0.9, cfg.tumour_radius_mm, cfg.tumour_radius_mm * 1.1])
    tumour = irregular_blob(grid, centre, radii, 0.25, 6.0, rng) & breast
    benign = np.zeros(cfg.shape, bool)
    foci: list[list[float]] = []
    for _ in range(cfg.benign_foci):
        for _try in range(100):
            c = candidates[rng.integers(len(candidates))].astype(float)
            if np.linalg.norm((c - centre) * cfg.spacing_mm) > 3 * cfg.tumour_radius_mm:
                break
        blob = ellipsoid_level(grid, c, (4.0, 4.0, 4.0)) < 1.0
        benign |= blob & breast & ~tumour
        foci.append(c.tolist())
    tissue = np.full(cfg.shape, INTENSITY["air"], np.float32)
    tissue[muscle] = INTENSITY["muscle"]
    tissue[breast] = INTENSITY["fat"]
    tissue[fibroglandular] = INTENSITY["fibroglandular"]
    tissue[benign] = INTENSITY["benign"]
    tissue[tumour] = INTENSITY["tumour"]
    shading = (1.0 + 0.1 * smooth_field(grid, 60.0, rng)).astype(np.float32)
    s0 = tissue * shading

    kinetics: dict[str, dict[str, Any]] = {
        "tumour": {"dce_in": 1.2, "slope_per_min": -cfg.washout_per_min, "curve": "washout"},
        "benign": {"dce_in": 0.7, "slope_per_min": cfg.persistent_per_min, "curve": "persistent"},
        "fibroglandular": {"dce_in": cfg.bpe, "slope_per_min": cfg.persistent_per_min / 3, "curve": "persistent"},
        "muscle": {"dce_in": 0.3, "slope_per_min": 0.0, "curve": "plateau"},
        "fat": {"dce_in": 0.0, "slope_per_min": 0.0, "curve": "none"},
    }
    regions = {
        "muscle": muscle,
        "fat": breast & ~fibroglandular & ~tumour & ~benign,
        "fibroglandular": fibroglandular & ~tumour & ~benign,
        "benign": benign,
        "tumour": tumour,
    }
    e_in = np.zeros(cfg.shape, np.float32)
    slope = np.zeros(cfg.shape, np.float32)
    for name, region in regions.items():
        e_in[region] = kinetics[name]["dce_in"]
        slope[region] = kinetics[name]["slope_per_min"]

    t1 = cfg.post_times_s[0]
    phases = {"t1": s0}
    for k, t in enumerate(cfg.post_times_s, start=1):
        phases[f"t1c_{k}"] = s0 * (1.0 + e_in + slope * (t - t1) / 60.0)

    # motion: every phase but the first post-contrast moves rigidly (and optionally deforms) relative to it
    centre_idx = (np.asarray(cfg.shape) - 1) / 2.0
    images: dict[str, Image] = {}
    motion: dict[str, Any] = {}
    for name, clean in phases.items():
        if name == "t1c_1" or (cfg.motion_mm == 0 and cfg.motion_deg == 0 and cfg.deformation_mm == 0):
            moved = clean
            motion[name] = {"rotation_deg": 0.0, "shift_mm": [0.0, 0.0, 0.0]}
        else:
            angle = float(rng.uniform(-cfg.motion_deg, cfg.motion_deg))
            shift_mm = rng.uniform(-cfg.motion_mm, cfg.motion_mm, 3) * np.array([0.3, 1.0, 1.0])
            a = math.radians(angle)
            # in-plane (y, x) rotation about the volume centre; voxel-index matrix (anisotropy handled by scaling)
            s = np.asarray(cfg.spacing_mm)
            rot = np.eye(3)
            rot[1:, 1:] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
            matrix = np.diag(1 / s) @ rot @ np.diag(s)
            offset = centre_idx - matrix @ centre_idx + shift_mm / s
            moved = _warp(clean, matrix, offset, 1)
            if cfg.deformation_mm > 0:
                field_idx = [cfg.deformation_mm / sp * smooth_field(grid, 40.0, rng) for sp in cfg.spacing_mm]
                coords = np.indices(cfg.shape, dtype=np.float32) + np.stack(field_idx)
                moved = ndimage.map_coordinates(moved, coords, order=1, mode="nearest")
            motion[name] = {"rotation_deg": angle, "shift_mm": shift_mm.tolist()}
        noisy = moved + rng.normal(0.0, cfg.noise_sd, cfg.shape).astype(np.float32)
        images[name] = Image(np.clip(noisy, 0, None).astype(np.float32), cfg.spacing_mm, modality="MR", units="a.u.")
    for name, mask in (("tumour", tumour), ("benign", benign), ("breast", breast)):
        images[name] = Image(mask.astype(np.uint8), cfg.spacing_mm, units="label")
    voxel_ml = float(np.prod(cfg.spacing_mm)) / 1000.0
    truth = {
        "post_times_s": list(cfg.post_times_s),
        "kinetics": kinetics,
        "tumour_volume_ml": float(tumour.sum()) * voxel_ml,
        "tumour_centre_index": centre.tolist(),
        "benign_foci_index": foci,
        "motion": motion,
        "motion_convention": "phase voxel (z,y,x) = M · reference voxel + offset: in-plane rotation about the volume "
        "centre then shift_mm; reference = t1c_1",
    }
    return Phantom("dce-breast", images, truth, cfg)
