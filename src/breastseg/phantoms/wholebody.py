"""Whole-body FDG PET/CT phantom of a metastatic breast-cancer patient, at baseline and follow-up.

Anatomy is analytic, in a body frame ``(x, y, z)`` mm — x to the patient's left, y posterior, z superior (LPS),
z = 0 at the bottom of the field of view: a torso (elliptic cylinder) with neck and head; lungs; heart; liver on
the patient's right; kidneys; bladder; brain in a skull; the spine (cortex and marrow), iliac wings and ribs as
bone. Physiological FDG uptake in brain, heart, kidneys, bladder and liver. Lesions (balls) in bone, liver and
lymph nodes (axillary, mediastinal, para-aortic, iliac) with known SUVbw and volume; bone lesions lytic or
sclerotic on CT, liver lesions hypodense.

Images: CT (HU) on a ~2 mm grid and PET on a ~4 mm grid (the activity drawn on the CT grid, blurred by the
scanner's PSF, averaged onto the PET grid, with count-like noise, stored in Bq/ml with the patient and injection
data that make it SUV). Truth on the PET grid: ``lesions`` (label k = lesion k of ``truth["lesions"]``),
``liver`` and ``bone`` masks.

The follow-up keeps the patient and the lesions and applies the designed **response** to them — ``PMR`` (every
lesion's SUV × 0.45 and radius × 0.75), ``SMD`` (SUV within ± 10 %), ``PMD`` (SUV × 1.6 and one new lesion) or
``CMR`` (every lesion gone) — with the margins wide enough that PERCIST applied to the images gives that
category. The patient lies slightly differently: the follow-up anatomy is rotated about the z axis and shifted
(``rotation_deg``, ``shift_mm``); the truth records the rigid transform that maps follow-up physical points onto
baseline ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.image import Grid, Image
from breastseg.phantoms.base import Phantom, phantom_patient


class Response(StrEnum):
    """The phantom's simulated treatment response (PERCIST categories)."""

    PMR = "PMR"
    SMD = "SMD"
    PMD = "PMD"
    CMR = "CMR"


Site = Literal["bone", "liver", "node"]

#: lymph-node stations in the body frame (x, y, z) mm
NODE_STATIONS: dict[str, tuple[float, float, float]] = {
    "left axilla": (135.0, 0.0, 400.0),
    "right axilla": (-135.0, 0.0, 400.0),
    "mediastinum": (0.0, -5.0, 385.0),
    "para-aortic": (18.0, 35.0, 210.0),
    "left iliac": (55.0, 15.0, 110.0),
    "right iliac": (-55.0, 15.0, 110.0),
}


@dataclass(frozen=True)
class Lesion:
    """A metastasis: site, centre in the body frame ``(x, y, z)`` mm, radius mm, SUVbw, CT value (HU)."""

    site: Site
    centre_mm: tuple[float, float, float]
    radius_mm: float
    suv: float
    hu: float
    station: str = ""


@dataclass(frozen=True)
class WholeBodyPhantomConfig:
    """Parameters (spacings in array order ``(dz, dy, dx)`` mm; the field of view is ``(z, y, x)`` mm)."""

    seed: int = 0
    fov_mm: tuple[float, float, float] = (600.0, 280.0, 400.0)
    ct_spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)
    pet_spacing_mm: tuple[float, float, float] = (4.0, 4.0, 4.0)
    pet_fwhm_mm: float = 6.5
    pet_relative_noise: float = 0.12
    ct_noise_hu: float = 15.0
    lesions: int = 6
    response: Response = Response.PMR
    rotation_deg: float = 2.0
    shift_mm: tuple[float, float, float] = (4.0, -3.0, 6.0)
    patient_weight_kg: float = 68.0
    patient_height_m: float = 1.64
    patient_sex: str = "F"
    injected_activity_mbq_per_kg: float = 3.5
    injection_to_scan_min: float = 60.0

    def __post_init__(self) -> None:
        if min(self.ct_spacing_mm) <= 0 or min(self.pet_spacing_mm) <= 0:
            raise InputError("voxel spacings must be positive")
        if self.response not in ("PMR", "SMD", "PMD", "CMR"):
            raise InputError(f"response must be PMR, SMD, PMD or CMR, got {self.response!r}")
        if not 1 <= self.lesions <= 20:
            raise InputError(f"lesions must be 1–20, got {self.lesions}")


# organ: (centre (x, y, z) mm, semi-axes (x, y, z) mm, HU, SUVbw)
_ORGANS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float, float]] = {
    "left lung": ((75.0, 0.0, 365.0), (55.0, 75.0, 100.0), -820.0, 0.4),
    "right lung": ((-75.0, 0.0, 365.0), (60.0, 75.0, 100.0), -820.0, 0.4),
    "heart": ((20.0, -25.0, 320.0), (50.0, 45.0, 55.0), 40.0, 3.5),
    "liver": ((-70.0, -5.0, 240.0), (85.0, 80.0, 62.0), 60.0, 2.2),
    "left kidney": ((70.0, 55.0, 185.0), (28.0, 25.0, 50.0), 35.0, 4.5),
    "right kidney": ((-70.0, 55.0, 175.0), (28.0, 25.0, 50.0), 35.0, 4.5),
    "bladder": ((0.0, -30.0, 60.0), (35.0, 30.0, 30.0), 10.0, 12.0),
    "brain": ((0.0, 0.0, 525.0), (60.0, 75.0, 55.0), 35.0, 8.0),
}
_SOFT_TISSUE = (30.0, 0.9)
_MARROW = (250.0, 1.3)
_CORTEX_HU = 750.0


def _ellipsoid(p: tuple[np.ndarray, ...], centre: tuple[float, ...], radii: tuple[float, ...]) -> np.ndarray:
    level = sum(((c - c0) / r) ** 2 for c, c0, r in zip(p, centre, radii, strict=True))
    return np.asarray(level <= 1.0)


def _anatomy(p: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Masks of the body, each organ and the bone (cortex, marrow) at body-frame points ``p = (x, y, z)``."""
    x, y, z = p
    body = ((x / 170.0) ** 2 + (y / 110.0) ** 2 <= 1.0) & (z >= 20.0) & (z <= 470.0)
    body |= (x**2 + y**2 <= 55.0**2) & (z > 470.0) & (z <= 500.0)
    head = _ellipsoid(p, (0.0, 0.0, 525.0), (70.0, 85.0, 68.0))
    body |= head
    masks = {name: _ellipsoid(p, c, r) & body for name, (c, r, _, _) in _ORGANS.items()}
    skull = head & ~_ellipsoid(p, (0.0, 0.0, 525.0), (64.0, 79.0, 61.0))
    spine_r = np.sqrt(x**2 + (y - 75.0) ** 2)
    spine = (spine_r <= 18.0) & (z >= 80.0) & (z <= 490.0)
    spine_cortex = spine & ((spine_r >= 15.0) | (np.mod(z, 30.0) < 3.0))  # shell and end plates
    iliac = np.zeros_like(body)
    for side in (-1.0, 1.0):
        outer = _ellipsoid(p, (side * 90.0, 40.0, 100.0), (45.0, 25.0, 50.0))
        iliac |= outer & ~_ellipsoid(p, (side * 90.0, 40.0, 100.0), (37.0, 17.0, 42.0))
    ribs = np.zeros_like(body)
    ring = np.sqrt((x / 150.0) ** 2 + (y / 95.0) ** 2)
    anterior = (y < 0) & (np.abs(x) < 45.0)  # costal cartilage gap at the sternum
    for zr in range(250, 440, 30):
        ribs |= (np.abs(ring - 1.0) <= 0.045) & (np.abs(z - zr) <= 5.0) & ~anterior
    cortex = (spine_cortex | iliac | ribs | skull) & body
    bone = (spine | iliac | ribs | skull) & body
    masks["body"] = body
    masks["bone"] = bone
    masks["marrow"] = spine & ~spine_cortex & body
    return masks, cortex


def _candidate(rng: np.random.Generator, site: Site, station: str) -> Lesion:
    if site == "bone":
        centre = (0.0, 75.0, float(rng.uniform(120.0, 450.0)))
        hu = float(rng.choice([120.0, 950.0]))  # lytic or sclerotic
        return Lesion("bone", centre, float(rng.uniform(10.0, 13.0)), float(rng.uniform(4.5, 8.0)), hu, "spine")
    if site == "liver":
        (cx, cy, cz), (rx, ry, rz), _, _ = _ORGANS["liver"]
        u = rng.normal(size=3)
        u *= rng.uniform(0.0, 0.45) / np.linalg.norm(u)
        centre = (cx + u[0] * rx, cy + u[1] * ry, cz + u[2] * rz)
        return Lesion("liver", centre, float(rng.uniform(10.0, 16.0)), float(rng.uniform(5.0, 9.0)), 35.0, "liver")
    sx, sy, sz = NODE_STATIONS[station]
    centre = (sx + rng.uniform(-6, 6), sy + rng.uniform(-6, 6), sz + rng.uniform(-8, 8))
    return Lesion("node", centre, float(rng.uniform(9.0, 13.0)), float(rng.uniform(4.5, 8.5)), 40.0, station)


def _apart(lesion: Lesion, others: list[Lesion], gap_mm: float = 8.0) -> bool:
    return all(math.dist(lesion.centre_mm, o.centre_mm) >= lesion.radius_mm + o.radius_mm + gap_mm for o in others)


def _draw_lesions(rng: np.random.Generator, n: int, exclude: set[str] | None = None) -> list[Lesion]:
    """``n`` lesions: sites in turn bone, liver, node (a breast-cancer spread), positions inside their organ,
    at least 8 mm apart (separate components even after growth at follow-up)."""
    lesions: list[Lesion] = []
    stations = [s for s in NODE_STATIONS if not exclude or s not in exclude]
    rng.shuffle(stations)
    for k in range(n):
        site: Site = ("bone", "liver", "node")[k % 3]
        station = stations[(k // 3) % len(stations)]
        for _ in range(200):
            lesion = _candidate(rng, site, station)
            if _apart(lesion, lesions):
                break
        else:
            raise InputError(f"cannot place {n} separate lesions; ask for fewer")
        lesions.append(lesion)
    return lesions


def followup_lesions(baseline: list[Lesion], response: Response, rng: np.random.Generator) -> list[Lesion]:
    """The designed response applied to the baseline lesions (see the module docstring)."""
    if response == "CMR":
        return []
    if response == "PMR":
        return [replace(les, suv=les.suv * 0.45, radius_mm=les.radius_mm * 0.75) for les in baseline]
    if response == "SMD":
        return [replace(les, suv=les.suv * float(rng.uniform(0.9, 1.1))) for les in baseline]
    grown = [replace(les, suv=les.suv * 1.6, radius_mm=les.radius_mm * 1.15) for les in baseline]
    stations = [s for s in NODE_STATIONS if s not in {les.station for les in baseline}] or list(NODE_STATIONS)
    for _ in range(200):  # a new node, apart from every grown lesion
        new = _candidate(rng, "node", stations[int(rng.integers(len(stations)))])
        if _apart(new, grown):
            return [*grown, replace(new, station=f"{new.station} (new)")]
    raise InputError("cannot place a new lesion apart from the others")


def _rotation_z(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0], [0.0, 0.0, 1.0]])


def _body_points(grid: Grid, rotation: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, ...]:
    """Body-frame ``(x, y, z)`` of every voxel centre of ``grid``: world = rotation @ body + shift (the body frame's
    origin is the world's: the centre of the field of view in x and y, its bottom in z)."""
    axes = [np.arange(n) * s for n, s in zip(grid.shape, grid.spacing, strict=True)]  # (z, y, x) offsets in mm
    zz, yy, xx = np.meshgrid(*axes, indexing="ij", sparse=True)
    world = [xx + grid.origin[0], yy + grid.origin[1], zz + grid.origin[2]]
    rel = [w - s for w, s in zip(world, shift, strict=True)]
    inv = rotation.T
    return tuple((inv[i, 0] * rel[0] + inv[i, 1] * rel[1] + inv[i, 2] * rel[2]).astype(np.float32) for i in range(3))


def _grid(fov_mm: tuple[float, float, float], spacing: tuple[float, float, float]) -> Grid:
    shape = tuple(max(4, round(f / s)) for f, s in zip(fov_mm, spacing, strict=True))
    # world origin so that the body frame's x = y = 0 is the centre of the field of view and z = 0 its bottom
    origin = (-(shape[2] - 1) * spacing[2] / 2.0, -(shape[1] - 1) * spacing[1] / 2.0, 0.0)
    return Grid(shape, spacing, origin, np.eye(3))


def _scan(
    cfg: WholeBodyPhantomConfig,
    lesions: list[Lesion],
    rotation: np.ndarray,
    shift: np.ndarray,
    rng: np.random.Generator,
    scan_time: datetime,
) -> tuple[dict[str, Image], dict[str, Any]]:
    ct_grid = _grid(cfg.fov_mm, cfg.ct_spacing_mm)
    pet_grid = _grid(cfg.fov_mm, cfg.pet_spacing_mm)

    # --- CT grid: anatomy, HU and the activity (SUVbw) to blur
    p = _body_points(ct_grid, rotation, shift)
    masks, cortex = _anatomy(p)  # type: ignore[arg-type]
    hu = np.full(ct_grid.shape, -1000.0, np.float32)
    suv = np.zeros(ct_grid.shape, np.float32)
    hu[masks["body"]], suv[masks["body"]] = _SOFT_TISSUE
    for name, (_, _, organ_hu, organ_suv) in _ORGANS.items():
        hu[masks[name]], suv[masks[name]] = organ_hu, organ_suv
    hu[masks["marrow"]], suv[masks["marrow"]] = _MARROW
    hu[cortex] = _CORTEX_HU
    for les in lesions:
        ball = _ellipsoid(p, les.centre_mm, (les.radius_mm,) * 3) & masks["body"]
        hu[ball], suv[ball] = les.hu, les.suv
    hu += rng.normal(0.0, cfg.ct_noise_hu, ct_grid.shape).astype(np.float32)
    sigma = [cfg.pet_fwhm_mm / 2.3548 / s for s in ct_grid.spacing]
    blurred = ndimage.gaussian_filter(suv, sigma)
    pet_suv = Image(blurred, ct_grid.spacing, ct_grid.origin).resample_onto(pet_grid, order=1).array
    noise = cfg.pet_relative_noise * np.sqrt(np.maximum(pet_suv, 0.0) * _SOFT_TISSUE[1])
    pet_suv = np.clip(pet_suv + rng.standard_normal(pet_suv.shape).astype(np.float32) * noise, 0.0, None)

    _, pet_info = phantom_patient(
        cfg.patient_weight_kg,
        cfg.patient_height_m,
        cfg.patient_sex,
        cfg.injected_activity_mbq_per_kg,
        cfg.injection_to_scan_min,
        scan_time,
        "BQML",
        "whole-body phantom",
    )
    factor = pet_info["suvbw_per_bqml"]

    # --- truth on the PET grid
    q = _body_points(pet_grid, rotation, shift)
    pet_masks, _ = _anatomy(q)  # type: ignore[arg-type]
    labels = np.zeros(pet_grid.shape, np.uint8)
    truth_lesions = []
    for k, les in enumerate(lesions, start=1):
        ball = _ellipsoid(q, les.centre_mm, (les.radius_mm,) * 3) & pet_masks["body"]
        labels[ball & (labels == 0)] = k
        truth_lesions.append(
            {
                "label": k,
                "site": les.site,
                "station": les.station,
                "suvbw": round(les.suv, 4),
                "radius_mm": round(les.radius_mm, 3),
                "volume_ml": float((labels == k).sum() * pet_grid.voxel_volume_mm3 / 1000.0),
                "centre_body_mm": [round(c, 3) for c in les.centre_mm],
                "ct_hu": les.hu,
            }
        )
    g, pg = ct_grid, pet_grid
    images = {
        "ct": Image(hu, g.spacing, g.origin, g.direction, "CT", "HU"),
        "pet": Image((pet_suv / factor).astype(np.float32), pg.spacing, pg.origin, pg.direction, "PT", "BQML"),
        "lesions": Image(labels, pg.spacing, pg.origin, pg.direction, "SEG", "label"),
        "liver": Image(pet_masks["liver"].astype(np.uint8), pg.spacing, pg.origin, pg.direction, "SEG", "label"),
        "bone": Image(pet_masks["bone"].astype(np.uint8), pg.spacing, pg.origin, pg.direction, "SEG", "label"),
    }
    truth = {"pet": pet_info, "lesions": truth_lesions, "lesion_count": len(truth_lesions)}
    return images, truth


def make_wholebody_pair(cfg: WholeBodyPhantomConfig | None = None) -> dict[str, Phantom]:
    """Baseline and follow-up phantoms of one patient (``{"baseline": …, "followup": …}``), deterministic for
    ``cfg`` (seed included)."""
    cfg = cfg or WholeBodyPhantomConfig()
    rng = np.random.default_rng(cfg.seed)
    base_lesions = _draw_lesions(rng, cfg.lesions)
    follow_lesions = followup_lesions(base_lesions, cfg.response, rng)
    t0 = datetime(2025, 5, 6, 9, 30, 0)
    baseline_images, baseline_truth = _scan(cfg, base_lesions, np.eye(3), np.zeros(3), rng, t0)
    rotation = _rotation_z(cfg.rotation_deg)
    shift = np.asarray(cfg.shift_mm, float)
    followup_images, followup_truth = _scan(cfg, follow_lesions, rotation, shift, rng, t0 + timedelta(days=84))
    # a follow-up world point w is the body point R^T (w - s); the same body point sits at that place in the
    # baseline world: baseline = R^T (followup - s), in LPS (x, y, z) mm
    transform = {
        "maps": "follow-up LPS (x, y, z) mm -> baseline LPS mm: p_baseline = R @ (p_followup - t)",
        "R": np.round(rotation.T, 10).tolist(),
        "t_mm": shift.tolist(),
        "rotation_deg_about_z": -cfg.rotation_deg,
    }
    common = {"patient_response": cfg.response, "followup_to_baseline": transform}
    return {
        "baseline": Phantom("wholebody", baseline_images, {**baseline_truth, **common, "timepoint": "baseline"}, cfg),
        "followup": Phantom("wholebody", followup_images, {**followup_truth, **common, "timepoint": "followup"}, cfg),
    }
