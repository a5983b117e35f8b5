"""Synthetic micro-PET-CT lumpectomy specimen, with known tumour, specimen and margin.

What it imitates (Maris et al. 2025, Methods): a fresh lumpectomy specimen of fat and fibroglandular tissue,
scanned by a specimen micro-CT (HU, isotropic ~0.1–0.2 mm voxels) and an [18F]FDG micro-PET (~0.4 mm voxels,
~1 mm resolution, noisy), co-registered. An irregular tumour of higher density and FDG uptake lies either a
chosen distance inside the specimen surface (negative margin) or touching it (positive margin). How it comes to
its margin (``placement``): ``"clipped"`` (the original) cuts the blob flat at the margin shell, a broad face
(≈ 60 mm² for a 12 mm tumour) parallel to the surface at exactly the margin, as a tumour pressed against a
fascial plane; ``"translated"`` moves the whole blob inward until its nearest point lies at the margin, the
convex approach of a tumour excised with a rim of tissue. A positive margin cuts the tumour at the surface in
both (the surgeon transected it). Optionally a
localisation hook-wire (metal, ~+3000 HU) runs from the tumour out of the specimen, and the specimen rests on
a plastic bed/container plate, as on the scanner.

Margin definition used for the truth (and by the margin read-out, :func:`~breastseg.masks.depth_below_surface_mm`):
the gap between the tumour surface and the specimen surface, measured face to face on the CT grid, i.e. for each
tumour voxel the distance (mm, true spacing) between its cube and the nearest cube outside the specimen; the margin
is the minimum over the tumour. A tumour voxel touching the outside (face, edge or corner) has margin 0 mm.
Positive when ≤ 0.1 mm. Tumours are placed by the voxel-centre depth earlier versions of this module measured
margins with (:func:`~breastseg.masks.voxel_centre_depth_mm`), so every seed's phantom stays as it was.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import edt
import numpy as np
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.image import Grid, Image, bounding_box, median_filter
from breastseg.io import write_image
from breastseg.io.atomic import write_marker
from breastseg.io.tables import write_csv_rows
from breastseg.masks import (
    POSITIVE_MARGIN_MM,
    depth_below_surface_mm,
    fill_holes,
    largest_component,
    margin_is_positive,
    voxel_centre_depth_mm,
)
from breastseg.phantoms.base import Phantom, phantom_patient, write_pet_ct_dicom
from breastseg.phantoms.shapes import irregular_blob, smooth_field
from breastseg.phantoms.specimen_confounders import ConfounderConfig, Confounders, draw_confounders, segment_mask

#: label values of ``labels.nii.gz``; 6–11 only from version 2 on (:mod:`breastseg.phantoms.specimen_confounders`),
#: where the tumour mask is tumour, DCIS extension and necrotic core together
TISSUE_LABELS = {
    "air": 0,
    "fat": 1,
    "fibroglandular": 2,
    "tumour": 3,
    "container": 4,
    "wire": 5,
    "benign_nodule": 6,
    "fat_necrosis_rim": 7,
    "biopsy_track": 8,
    "fibroglandular_band": 9,
    "dcis": 10,
    "necrotic_core": 11,
}
#: the labels that are malignant (the tumour mask and the margin's truth)
MALIGNANT_LABELS = ("tumour", "dcis", "necrotic_core")
#: the generator versions: 1 the original phantom (kept so that earlier results reproduce), 2 with the confounders,
#: 3 with a biopsy track a threshold follows to the surface (:meth:`ConfounderConfig.for_version`)
PHANTOM_VERSIONS = (1, 2, 3)
#: how a tumour with a negative margin comes to it (see the module docstring)
TUMOUR_PLACEMENTS = ("clipped", "translated")
#: a translated tumour counts as whole when it keeps this share of its blob; else up to this many placements are
#: tried and the most whole one kept
TRANSLATED_WHOLE = 0.99
TRANSLATED_ATTEMPTS = 6
#: lamella label map values (the specimen study's classes)
LAMELLA_LABELS = {"benign": 0, "malignant": 1, "unknown": 2}
#: the PET median filter the lamellae carry by default, mm: the specimen pipeline's (its ``median_kernel_mm``), so
#: a network trains on the PET it will see at inference
LAMELLA_PET_MEDIAN_MM = 2.0


#: How the three tumour types of the specimen study differ in the phantom (overrides of the NST defaults).
#: Invasive lobular carcinoma grows diffusely with lower FDG avidity and density contrast; DCIS lesions are
#: small and only mildly FDG-avid — both harder to segment, as the study found.
TUMOUR_TYPE_PRESETS: dict[str, dict[str, float]] = {
    "NST": {},
    "ILC": {"tumour_suv": 2.6, "ct_tumour_hu": 55.0, "tumour_irregularity": 0.45, "tumour_heterogeneity": 0.5},
    "DCIS": {"tumour_suv": 2.0, "ct_tumour_hu": 50.0, "tumour_diameter_mm": 8.0, "tumour_heterogeneity": 0.5},
}
_CT_HU = {
    "air": -1000.0,
    "fat": -100.0,
    "fibroglandular": 40.0,
    "container": 120.0,
    "wire": 3000.0,
}


@dataclass(frozen=True)
class SpecimenPhantomConfig:
    """Parameters of the specimen phantom (defaults: a ~4 cm lumpectomy with a 12 mm NST-like tumour).

    Sizes are full axis lengths in mm, array order ``(z, y, x)``. ``margin_mm=None`` or ``0`` makes a
    positive margin (tumour touching the surface). ``version``: 1 the original generator (the default, so earlier
    results reproduce); 2 adds ``confounders`` (benign tissue a threshold cannot tell from tumour, a heterogeneous
    tumour: :mod:`breastseg.phantoms.specimen_confounders`), drawn from a random stream of their own, so a version-2
    phantom has the version-1 specimen and tumour of its seed with the confounders added; 3 has version 2's
    components with a wider, hotter biopsy track in more specimens (where its version-2 seed has a track, only the
    track differs; a specimen that gains one draws its malignant additions after it). ``confounders=None`` takes the
    version's own (:meth:`ConfounderConfig.for_version`).
    """

    seed: int = 0
    specimen_size_mm: tuple[float, float, float] = (26.0, 32.0, 40.0)
    tumour_diameter_mm: float = 12.0
    margin_mm: float | None = 2.0
    ct_spacing_mm: float = 0.2
    pet_spacing_mm: float = 0.4
    pet_fwhm_mm: float = 1.0
    pet_units: Literal["BQML", "SUVbw"] = "BQML"
    wire: bool = True
    container: bool = True
    ct_noise_hu: float = 20.0
    ct_texture_hu: float = 12.0
    ct_tumour_hu: float = 65.0
    pet_relative_noise: float = 0.25
    tumour_suv: float = 4.0
    tumour_heterogeneity: float = 0.35
    tumour_irregularity: float = 0.25
    fibroglandular_suv: float = 0.9
    fibroglandular_heterogeneity: float = 0.4
    uptake_boundary_mm: float = 0.4
    fat_suv: float = 0.4
    patient_weight_kg: float = 68.0
    patient_height_m: float = 1.65
    patient_sex: str = "F"
    injected_activity_mbq_per_kg: float = 0.8
    injection_to_scan_min: float = 95.0
    padding_mm: float = 3.0
    version: int = 1
    placement: Literal["clipped", "translated"] = "clipped"
    confounders: ConfounderConfig | None = None

    def __post_init__(self) -> None:
        if self.version not in PHANTOM_VERSIONS:
            raise InputError(f"unknown specimen phantom version {self.version}; one of {PHANTOM_VERSIONS}")
        if self.placement not in TUMOUR_PLACEMENTS:
            raise InputError(f"unknown tumour placement {self.placement!r}; one of {TUMOUR_PLACEMENTS}")
        if self.margin_mm is not None and self.margin_mm < 0:
            raise InputError(f"margin must be ≥ 0 mm, got {self.margin_mm}")
        if self.ct_spacing_mm <= 0 or self.pet_spacing_mm <= 0:
            raise InputError("voxel spacings must be positive")
        if self.tumour_diameter_mm >= 0.9 * min(self.specimen_size_mm):
            raise InputError(
                f"tumour diameter {self.tumour_diameter_mm} mm does not fit a specimen of {self.specimen_size_mm} mm"
            )

    @property
    def positive(self) -> bool:
        return not self.margin_mm

    @property
    def confounder_config(self) -> ConfounderConfig:
        """The components drawn (version 2 and later): ``confounders`` if given, else the version's own."""
        return self.confounders if self.confounders is not None else ConfounderConfig.for_version(self.version)


def _ct_grid(cfg: SpecimenPhantomConfig) -> Grid:
    extent = np.asarray(cfg.specimen_size_mm) + 2 * cfg.padding_mm
    extent[1] += 2.0  # room for the bed plate below the specimen
    shape = tuple(int(np.ceil(e / cfg.ct_spacing_mm)) for e in extent)
    # centre the field of view on the LPS origin (x, y, z order for the origin)
    half = (np.asarray(shape) - 1) * cfg.ct_spacing_mm / 2.0
    return Grid(shape, (cfg.ct_spacing_mm,) * 3, tuple(-half[::-1]), np.eye(3))


def _place_tumour(
    grid: Grid, specimen: np.ndarray, gap: np.ndarray, cfg: SpecimenPhantomConfig, rng: np.random.Generator
) -> np.ndarray:
    radii = cfg.tumour_diameter_mm / 2.0 * rng.uniform(0.85, 1.15, size=3)
    r_eff = float(np.mean(radii))
    margin = cfg.margin_mm or 0.0
    # the centre sits where the blob protrudes past the margin shell, which then clips it flat (translated: where
    # the blob starts before it moves inward)
    target = margin + 0.7 * r_eff if margin > 0 else 0.6 * r_eff
    tolerance = grid.spacing[0]
    best: tuple[float, np.ndarray] | None = None  # translated: the most whole of the tumours cut at the margin
    for attempt in range(20):
        candidates = np.argwhere(specimen & (np.abs(gap - target) < tolerance))
        if len(candidates) == 0:
            raise InputError(
                f"cannot place a {cfg.tumour_diameter_mm} mm tumour {margin} mm inside a specimen of "
                f"{cfg.specimen_size_mm} mm; make the specimen larger or the tumour smaller"
            )
        centre = candidates[rng.integers(len(candidates))]
        blob = irregular_blob(grid, centre, radii, irregularity=cfg.tumour_irregularity, correlation_mm=4.0, rng=rng)
        if margin > 0 and cfg.placement == "translated":
            whole = fill_holes(largest_component(blob, connectivity=6))
            tumour = largest_component(_translated_to_margin(whole, gap, centre, margin), connectivity=6)
            kept = tumour.sum() / max(whole.sum(), 1)
            if kept < TRANSLATED_WHOLE and attempt < TRANSLATED_ATTEMPTS - 1:  # cut at the margin: try elsewhere
                best = (kept, tumour) if best is None or kept > best[0] else best
                continue
            if best is not None and best[0] > kept:
                tumour = best[1]
        else:
            allowed = gap >= margin - 1e-6 if margin > 0 else specimen
            tumour = fill_holes(largest_component(blob & allowed & specimen, connectivity=6))
        expected = 4.0 / 3.0 * np.pi * np.prod(radii) / grid.voxel_volume_mm3
        if tumour.sum() > 0.3 * expected:
            return tumour
        tolerance *= 1.5
    raise InputError("could not place a tumour of a reasonable size; try another seed")


def _translated_to_margin(blob: np.ndarray, gap: np.ndarray, centre: np.ndarray, margin_mm: float) -> np.ndarray:
    """``blob`` moved in whole voxels away from the nearest surface (along the depth's gradient at ``centre``) to
    the first position where every voxel lies at least ``margin_mm`` deep (``gap``: mm below the surface), so its
    nearest voxel is at the margin to within a voxel's step of the depth. A blob too large to lie whole that deep
    anywhere on that line is moved to where it lies deepest and cut flat at the margin there (as the clipped
    placement does)."""
    gradient = np.array([g[tuple(centre)] for g in np.gradient(gap)])
    inward = gradient / max(float(np.linalg.norm(gradient)), 1e-12)
    points = np.argwhere(blob)
    shape = np.asarray(gap.shape)

    def moved(step: float) -> np.ndarray:
        return points + np.round(inward * step).astype(int)

    def shallowest(step: float) -> float:
        at = moved(step)
        if (at < 0).any() or (at >= shape).any():
            return -1.0
        return float(gap[tuple(at.T)].min())

    steps = np.arange(0.0, float(max(gap.shape)), 0.25)
    if shallowest(0.0) >= margin_mm - 1e-6:  # already deep enough: out towards the surface while it stays so
        first_out = next((s for s in steps if shallowest(-s) < margin_mm - 1e-6), 0.25)
        step = -(first_out - 0.25)
    else:
        depths = [shallowest(s) for s in steps]
        deep = [s for s, d in zip(steps, depths, strict=True) if d >= margin_mm - 1e-6]
        step = deep[0] if deep else float(steps[int(np.argmax(depths))])
    out = np.zeros(gap.shape, dtype=bool)
    out[tuple(moved(step).T)] = True
    return out & (gap >= margin_mm - 1e-6)


def _wire(grid: Grid, start_index: np.ndarray, rng: np.random.Generator, length_mm: float) -> np.ndarray:
    """A straight 0.5 mm metal wire from ``start_index`` outward in a random (mostly lateral) direction."""
    direction = rng.standard_normal(3)
    direction[1] = abs(direction[1]) * -0.3  # point away from the bed (towards low y)
    return segment_mask(grid, start_index, direction, length_mm, 0.25)


def _bed(grid: Grid, specimen: np.ndarray, thickness_mm: float = 1.0) -> np.ndarray:
    rows = np.flatnonzero(specimen.any(axis=(0, 2)))
    y0 = int(rows[-1]) + 1
    y1 = min(grid.shape[1], y0 + max(1, round(thickness_mm / grid.spacing[1])))
    bed = np.zeros(grid.shape, dtype=bool)
    border = max(1, round(1.0 / grid.spacing[2]))
    bed[border:-border, y0:y1, border:-border] = True
    return bed


def _perturbed(mask: np.ndarray, grid: Grid, amplitude_mm: float, rng: np.random.Generator) -> np.ndarray:
    """``mask`` with its boundary moved in and out by a smooth random field (3 mm correlation) of standard deviation
    ``amplitude_mm``: over a large face the boundary reaches about two of them beyond the original somewhere."""
    if amplitude_mm <= 0:
        return mask
    margin = [int(np.ceil(3 * amplitude_mm / s)) + 2 for s in grid.spacing]
    box = bounding_box(mask, margin=margin)
    if box is None:
        return mask
    sub = np.ascontiguousarray(mask[box], dtype=np.uint8)
    signed = edt.edt(sub, anisotropy=grid.spacing) - edt.edt(1 - sub, anisotropy=grid.spacing)
    sub_grid = Grid(sub.shape, grid.spacing, (0.0, 0.0, 0.0), np.eye(3))
    out = mask.copy()
    out[box] = signed > amplitude_mm * smooth_field(sub_grid, 3.0, rng)
    return out


def _fwhm_sigma_vox(fwhm_mm: float, spacing: tuple[float, ...]) -> list[float]:
    return [fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / s for s in spacing]


#: air kept between the specimen and every face of the CT grid, mm: the whole specimen is in the field of view
FIELD_OF_VIEW_AIR_MM = 0.8


def _within_field_of_view(specimen: np.ndarray, grid: Grid) -> np.ndarray:
    """The specimen with an air rim of :data:`FIELD_OF_VIEW_AIR_MM` (at least 2 voxels) at every face of the grid:
    an irregular blob may reach beyond the padding, and a specimen cut by the image edge has no surface there (the
    read-out refuses a tumour at the image edge). Where it reached that far, the specimen is cut flat."""
    inside = np.zeros_like(specimen)
    rim = [max(2, int(np.ceil(FIELD_OF_VIEW_AIR_MM / s))) for s in grid.spacing]
    inside[tuple(slice(r, n - r) for r, n in zip(rim, specimen.shape, strict=True))] = True
    return specimen & inside


def make_specimen_phantom(cfg: SpecimenPhantomConfig | None = None) -> Phantom:
    """Generate a specimen phantom: CT (HU), PET (Bq/ml or SUVbw), tumour, specimen and tissue labels.

    Deterministic for a given configuration. See the module docstring for the margin definition.
    """
    cfg = cfg or SpecimenPhantomConfig()
    rng = np.random.default_rng(cfg.seed)
    grid = _ct_grid(cfg)

    centre = (np.asarray(grid.shape) - 1) / 2.0
    centre[1] -= 1.0 / grid.spacing[1]  # sit a little towards low y, above the bed
    specimen = irregular_blob(
        grid, centre, np.asarray(cfg.specimen_size_mm) / 2.0, irregularity=0.12, correlation_mm=10.0, rng=rng
    )
    specimen = _within_field_of_view(specimen, grid)
    gap = voxel_centre_depth_mm(specimen, grid.spacing)  # placement: as every earlier phantom of the seed
    tumour = _place_tumour(grid, specimen, gap, cfg, rng)
    fibro = specimen & ~tumour & (smooth_field(grid, 3.0, rng) > 0.4)
    core_tumour = tumour  # the blob the metabolic boundary and the wire follow
    conf: Confounders | None = None
    if cfg.version >= 2:
        conf_rng = np.random.default_rng([cfg.seed, 2])  # its own stream: the version-1 draws stay as they were
        conf = draw_confounders(grid, specimen, tumour, gap, cfg.margin_mm or 0.0, cfg.confounder_config, conf_rng)
        tumour = tumour | conf.spicules | conf.dcis

    labels = np.zeros(grid.shape, dtype=np.uint8)
    labels[specimen] = TISSUE_LABELS["fat"]
    labels[fibro] = TISSUE_LABELS["fibroglandular"]
    if conf is not None:
        for name, (mask, _, _) in conf.benign.items():
            labels[mask] = TISSUE_LABELS[name]
        labels[conf.oil] = TISSUE_LABELS["fat"]
    labels[tumour] = TISSUE_LABELS["tumour"]
    if conf is not None:
        labels[conf.dcis] = TISSUE_LABELS["dcis"]
        labels[conf.necrotic] = TISSUE_LABELS["necrotic_core"]
    if cfg.container:
        labels[_bed(grid, specimen) & ~specimen] = TISSUE_LABELS["container"]
    tumour_centre = np.mean(np.argwhere(core_tumour), axis=0)
    if cfg.wire:
        wire_len = float(max(cfg.specimen_size_mm))
        labels[_wire(grid, tumour_centre, rng, wire_len) & (labels != TISSUE_LABELS["container"])] = TISSUE_LABELS[
            "wire"
        ]

    # --- CT (HU): class values, texture, partial volume blur, noise
    hu = np.zeros(grid.shape, dtype=np.float32)
    for name, value in _CT_HU.items():
        hu[labels == TISSUE_LABELS[name]] = value
    hu[labels == TISSUE_LABELS["tumour"]] = cfg.ct_tumour_hu
    if conf is not None:
        for name, (_, _, value) in conf.benign.items():
            hu[labels == TISSUE_LABELS[name]] = value
        hu[labels == TISSUE_LABELS["dcis"]] = cfg.confounder_config.dcis_hu
        hu[labels == TISSUE_LABELS["necrotic_core"]] = cfg.confounder_config.necrotic_core_hu
    hu += np.where(specimen, cfg.ct_texture_hu * smooth_field(grid, 1.0, rng), 0.0).astype(np.float32)
    hu = ndimage.gaussian_filter(hu, sigma=0.6)
    hu += rng.normal(0.0, cfg.ct_noise_hu, size=grid.shape).astype(np.float32)
    ct = Image(hu.astype(np.float32), grid.spacing, grid.origin, grid.direction, modality="CT", units="HU")

    # --- PET: SUVbw map, ~1 mm resolution, PET grid, Poisson-like noise, then Bq/ml
    suv = np.zeros(grid.shape, dtype=np.float32)
    suv[labels == TISSUE_LABELS["fat"]] = cfg.fat_suv
    fibro_sel = labels == TISSUE_LABELS["fibroglandular"]
    fibro_field = np.clip(1.0 + cfg.fibroglandular_heterogeneity * smooth_field(grid, 2.0, rng), 0.3, None)
    suv[fibro_sel] = cfg.fibroglandular_suv * fibro_field[fibro_sel]
    heterogeneity = np.clip(1.0 + cfg.tumour_heterogeneity * smooth_field(grid, 2.0, rng), 0.2, None)
    # the metabolic boundary is not the histological one: FDG uptake follows the tumour's boundary moved in and out
    # by a smooth field of standard deviation uptake_boundary_mm
    uptake = _perturbed(core_tumour, grid, cfg.uptake_boundary_mm, rng) & specimen
    if conf is not None:
        for name, (_, avidity, _) in conf.benign.items():
            sel = (labels == TISSUE_LABELS[name]) & ~uptake
            suv[sel] = avidity[sel] if isinstance(avidity, np.ndarray) else avidity
    suv[uptake] = cfg.tumour_suv * heterogeneity[uptake]
    if conf is not None:
        c = cfg.confounder_config
        suv[conf.necrotic] *= c.necrotic_core_uptake
        suv[conf.spicules] = cfg.tumour_suv * c.spicule_uptake * heterogeneity[conf.spicules]
        suv[conf.dcis] = c.dcis_suv
    suv = ndimage.gaussian_filter(suv, sigma=_fwhm_sigma_vox(cfg.pet_fwhm_mm, grid.spacing))
    pet_grid = grid.with_spacing(cfg.pet_spacing_mm)
    suv_pet = Image(suv, grid.spacing, grid.origin, grid.direction).resample_onto(pet_grid, order=1).array
    noise_sd = cfg.pet_relative_noise * np.sqrt(np.maximum(suv_pet, 0.05) * max(cfg.fibroglandular_suv, 1e-3))
    suv_pet = np.clip(suv_pet + rng.standard_normal(suv_pet.shape).astype(np.float32) * noise_sd, 0.0, None)

    _, pet_truth = phantom_patient(
        cfg.patient_weight_kg,
        cfg.patient_height_m,
        cfg.patient_sex,
        cfg.injected_activity_mbq_per_kg,
        cfg.injection_to_scan_min,
        datetime(2025, 3, 14, 11, 30, 0),
        cfg.pet_units,
        "specimen phantom",
    )
    bw_factor = pet_truth["suvbw_per_bqml"]
    values = suv_pet / bw_factor if cfg.pet_units == "BQML" else suv_pet
    pet = Image(values.astype(np.float32), pet_grid.spacing, pet_grid.origin, pet_grid.direction, "PT", cfg.pet_units)

    # --- truth
    tumour_gaps = depth_below_surface_mm(specimen, grid.spacing)[tumour]  # the margin read-out's definition
    k = int(np.argmin(tumour_gaps))
    closest_index = np.argwhere(tumour)[k]
    margin = float(tumour_gaps[k])
    truth: dict[str, Any] = {
        "margin_mm": round(margin, 6),
        "requested_margin_mm": cfg.margin_mm or 0.0,
        "margin_status": "positive" if margin_is_positive(margin) else "negative",
        "positive_margin_threshold_mm": POSITIVE_MARGIN_MM,
        "margin_definition": (
            "face-to-face gap on the CT grid: min over tumour voxels of the distance in mm between the voxel's "
            "cube and the nearest cube outside the specimen (0 for a face, edge or corner contact)"
        ),
        "closest_tumour_point_lps_mm": [round(v, 4) for v in grid.index_to_world(closest_index)],
        "tumour_volume_ml": float(tumour.sum() * grid.voxel_volume_mm3 / 1000.0),
        "specimen_volume_ml": float(specimen.sum() * grid.voxel_volume_mm3 / 1000.0),
        "tumour_centre_lps_mm": [round(v, 4) for v in grid.index_to_world(tumour_centre)],
        "labels": TISSUE_LABELS,
        "ct_hu": {**_CT_HU, "tumour": cfg.ct_tumour_hu},
        "pet": {
            **pet_truth,
            "tumour_suvbw": cfg.tumour_suv,
            "tumour_ct_hu": cfg.ct_tumour_hu,
            "fibroglandular_suvbw": cfg.fibroglandular_suv,
            "fat_suvbw": cfg.fat_suv,
        },
        "has_wire": cfg.wire,
        "has_container": cfg.container,
        "phantom_version": cfg.version,
    }
    if conf is not None:
        volumes = {name: mask for name, (mask, _, _) in conf.benign.items()}
        volumes |= {"spicules": conf.spicules, "dcis": conf.dcis, "necrotic_core": conf.necrotic}
        truth["confounder_volumes_ml"] = {
            name: round(float(mask.sum() * grid.voxel_volume_mm3 / 1000.0), 6) for name, mask in volumes.items()
        }
        truth["has_biopsy_track"] = bool(conf.benign["biopsy_track"][0].any())
        truth["confounders"] = dataclasses.asdict(cfg.confounder_config)  # the values they took
    images = {
        "ct": ct,
        "pet": pet,
        "tumour": Image(tumour.astype(np.uint8), grid.spacing, grid.origin, grid.direction, "SEG", "label"),
        "specimen": Image(specimen.astype(np.uint8), grid.spacing, grid.origin, grid.direction, "SEG", "label"),
        "labels": Image(labels, grid.spacing, grid.origin, grid.direction, "SEG", "label"),
    }
    return Phantom("specimen", images, truth, cfg)


# ---------------------------------------------------------------------------------------------------
# DICOM export
# ---------------------------------------------------------------------------------------------------
def write_specimen_dicom(phantom: Phantom, out_dir: str | Path) -> dict[str, Path]:
    """Write the phantom's CT and PET as DICOM series (``out_dir/ct``, ``out_dir/pet``) of one study
    (:func:`breastseg.phantoms.base.write_pet_ct_dicom`)."""
    return write_pet_ct_dicom(
        phantom, out_dir, "Phantom^Specimen", "micro-CT specimen phantom", "micro-PET specimen phantom"
    )


# ---------------------------------------------------------------------------------------------------
# 2D lamellae for training
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Lamella:
    """One 2D lamella slice: CT (HU), PET on the CT grid, and the label map (benign/malignant/unknown)."""

    index: int
    z_mm: float
    ct: Image
    pet: Image
    label: Image


def _slice_2d(image: Image, k: int, array: np.ndarray | None = None) -> Image:
    assert image.origin is not None and image.direction is not None
    return Image(
        image.array[k] if array is None else array,
        spacing=image.spacing[1:],
        origin=image.origin[:2],
        direction=image.direction[:2, :2],
        modality=image.modality,
        units=image.units,
    )


def _cut_region(tissue: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half-plane beyond a random straight line that crosses the outer part of the tissue."""
    pts = np.argwhere(tissue)
    if len(pts) == 0:
        return np.zeros_like(tissue)
    centre = pts.mean(axis=0)
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.sin(angle), np.cos(angle)])
    offset = np.quantile((pts - centre) @ normal, 0.85)
    yy, xx = np.indices(tissue.shape)
    return np.asarray(((yy - centre[0]) * normal[0] + (xx - centre[1]) * normal[1]) > offset)


def make_lamellae(
    phantom: Phantom,
    n: int = 3,
    thickness_mm: float = 2.5,
    unknown_fraction: float = 0.10,
    seed: int | None = None,
    cut_edge: bool = True,
    unknown_band_mm: float = 0.3,
    span: Literal["tumour", "specimen"] = "tumour",
    pet_median_mm: float = LAMELLA_PET_MEDIAN_MM,
) -> list[Lamella]:
    """Cut ``n`` lamella slices through the tumour, ``thickness_mm`` apart (the study's 2–3 mm lamellas).

    ``span="specimen"``: a pathologist's full bread-loafing instead — a slice every ``thickness_mm`` across the
    whole specimen along z from a random offset (``n`` is not used), so tumour-free and peripheral lamellae and
    slices through the tumour's ends are among them; slices whose tissue covers less than a tenth of the largest
    slice's (the rounded ends of the specimen) are left out.

    The PET is median-filtered in 3D with a ``pet_median_mm`` kernel (0: none, as lamellae were before) and
    resampled onto the CT grid with third-order interpolation, as the study's preprocessing does before a specimen
    is read.
    About ``unknown_fraction`` of each slice's tissue is labelled unknown (the study had ~11 %), in smooth
    patches, as where histopathology could not be registered, plus a band of ``unknown_band_mm`` around the
    tumour boundary (co-registration uncertainty). With ``cut_edge`` a straight cut removes the outer part
    of the tissue on one side, as the pathologist's knife does.
    """
    ct, tumour, specimen = (
        phantom.images["ct"],
        phantom.images["tumour"].array > 0,
        phantom.images["specimen"].array > 0,
    )
    rows = np.flatnonzero(tumour.any(axis=(1, 2)))
    if len(rows) == 0:
        raise InputError("the phantom has no tumour to cut lamellae through")
    step = thickness_mm / ct.spacing[0]
    rng = np.random.default_rng(phantom.config.seed + 1000 if seed is None else seed)
    if span == "specimen":
        area = specimen.sum(axis=(1, 2))
        keep = np.flatnonzero(area >= 0.1 * area.max())
        start = keep[0] + rng.uniform(0.0, step)
        picks = [round(k) for k in np.arange(start, keep[-1] + 1, step)]
    else:
        centre = (rows[0] + rows[-1]) / 2.0
        picks = [round(centre + (i - (n - 1) / 2.0) * step) for i in range(n)]
        picks = [int(np.clip(k, rows[0], rows[-1])) for k in picks]
    pet = phantom.images["pet"]
    pet = median_filter(pet, pet_median_mm) if pet_median_mm > 0 else pet
    pet_on_ct = pet.resample_onto(ct, order=3)
    out = []
    for i, k in enumerate(picks):
        tissue = specimen[k].copy()
        ct2d, pet2d, tum2d = ct.array[k].copy(), pet_on_ct.array[k].copy(), tumour[k].copy()
        if cut_edge:
            # the pathologist's straight cut: tissue beyond a line through the outer third is gone
            cut = _cut_region(tissue, rng)
            ct2d[cut & tissue] = _CT_HU["air"] + rng.normal(0, 15.0, int((cut & tissue).sum()))
            pet2d[cut & tissue] = 0.0
            tissue &= ~cut
            tum2d &= ~cut
        plane = Grid(ct.shape[1:], ct.spacing[1:], ct.grid.origin[:2], ct.grid.direction[:2, :2])
        field2d = smooth_field(plane, 1.5, rng)
        threshold = np.quantile(field2d[tissue], 1.0 - unknown_fraction) if tissue.any() else np.inf
        label = np.where(tum2d, LAMELLA_LABELS["malignant"], LAMELLA_LABELS["benign"]).astype(np.uint8)
        label[tissue & (field2d > threshold)] = LAMELLA_LABELS["unknown"]
        # co-registration uncertainty: a band around the tumour boundary is unknown
        if unknown_band_mm > 0:  # at least one pixel on each side of the boundary; none when the band is 0
            band_px = max(1, round(unknown_band_mm / ct.spacing[1]))
            inner = ndimage.binary_erosion(tum2d, iterations=band_px)
            band = ndimage.binary_dilation(tum2d, iterations=band_px) & ~inner
            label[band & tissue] = LAMELLA_LABELS["unknown"]
        z_mm = float(ct.grid.index_to_world([k, 0, 0])[2])
        out.append(
            Lamella(
                index=i,
                z_mm=z_mm,
                ct=_slice_2d(ct, k, ct2d),
                pet=_slice_2d(pet_on_ct, k, pet2d),
                label=_slice_2d(ct, k, label).with_array(label, units="label", modality="SEG"),
            )
        )
    return out


def write_lamellae(lamellae: list[Lamella], out_dir: str | Path, patient_id: str, tumour_type: str = "NST") -> Path:
    """Write lamellae as 2D NIfTI plus ``manifest.csv`` (one row per slice, paths relative to the folder)."""
    out = Path(out_dir)
    rows = []
    for lam in lamellae:
        stem = f"{patient_id}_L{lam.index:02d}"
        names = {}
        for part, img in (("ct", lam.ct), ("pet", lam.pet), ("label", lam.label)):
            names[part] = f"{stem}_{part}.nii.gz"
            write_image(img, out / names[part])
        rows.append(
            {
                "patient_id": patient_id,
                "slice_id": stem,
                "tumour_type": tumour_type,
                "z_mm": f"{lam.z_mm:.4f}",
                **names,
            }
        )
    manifest = write_csv_rows(rows, out / "manifest.csv")
    write_marker(out, [manifest.name, *(row[p] for row in rows for p in ("ct", "pet", "label"))], merge=True)
    return manifest
