"""What makes a real lumpectomy specimen hard: benign tissue a threshold cannot tell from tumour, and a tumour that
is not one bright blob (the specimen phantom's version 2).

Each component below is a mask (and its CT and PET values) drawn from the phantom's own random stream for
version 2; :class:`ConfounderConfig` holds what each takes, with why. A PET-CT threshold reads density and uptake
voxel by voxel, so benign tissue as dense and as FDG-avid as parts of the tumour joins its mask, and low-uptake
tumour leaves it; only shape and context (a round, smooth, evenly bright nodule; a straight thin track; a ring
around fat) tell them apart — what the study's network is for.

Values (SUVbw before the PET's blur; HU before the CT's noise):

* **Fibroadenoma-like nodules** — the commonest benign breast lesion: well circumscribed, oval, smooth, dense
  (≈ 55 HU, as tumour) with moderate FDG uptake (SUVmax of fibroadenomas ≈ 1–4 in the PET literature; here
  2.8 ± 0.4 between nodules, homogeneous within one). Three, 5–9 mm across, anywhere in the specimen, never touching
  the tumour.
* **Inflamed biopsy track** — the preoperative core-needle track runs from the tumour to the specimen surface; its
  granulation tissue and haematoma are FDG-avid (here SUV 4.0, as avid as the tumour's mean, 45 HU) and 2 mm wide, so
  at the PET's ~1 mm resolution it can join tumour and surface in a thresholded mask: a false positive margin a
  threshold cannot avoid. In a share ``biopsy_track_probability`` (0.5) of the specimens. In version 2 the PET's
  partial volume with the air outside and with the fat beside a 2 mm track halves its signal near the surface, so
  a fitted threshold follows it towards the surface but never to it (margin specificity 0.83, the study's 0.59).
  Version 3 (:meth:`ConfounderConfig.for_version`) makes it what a 14-gauge core needle (2.1 mm) leaves after its
  granulation tissue has grown round it: 3 mm wide and SUV 5.0, as avid as the tumour's hotter parts (its mean
  4.0 ± 35 %), so that in half or more of the specimens with a track a threshold joins tumour and surface through
  it; and in 80 % of the specimens, since nearly every patient has a core-needle biopsy weeks before surgery and
  its track leaves the specimen towards the skin.
* **Fat necrosis** — an oil cyst (fat density inside) with an inflamed, FDG-avid rim (SUV 2.2, 45 HU, 0.8 mm thick),
  3–6 mm across.
* **Necrotic core** — large tumours outgrow their blood supply: a central region (``necrotic_core_fraction`` of the
  tumour's radius) with a fifth of the tumour's uptake and 35 HU.
* **Spicules** — thin (0.6 mm) straight extensions of the tumour, 1.5–3 mm long, labelled tumour, with the tumour's
  density but half its uptake (too thin for the PET to resolve); clipped to the margin like the tumour.
* **DCIS-like extension** — an intraductal branch leaving the tumour (1 mm wide, 4–7 mm long), malignant (labelled
  tumour) but only mildly FDG-avid (SUV 1.5) and barely denser than fibroglandular tissue (45 HU); clipped to the
  margin like the tumour, so it may carry the closest point.

* **Dense fibroglandular bands** — Cooper's-ligament-like strands of fibroglandular tissue (2 mm wide, 8–14 mm long,
  40 HU) with moderate uptake (SUV 1.6): as dense as the rest of the fibroglandular tissue, twice as avid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from breastseg.image import Grid
from breastseg.phantoms.shapes import ellipsoid_level, irregular_blob


@dataclass(frozen=True)
class ConfounderConfig:
    """How many of each component and the values they take (see the module docstring for the rationale)."""

    benign_nodules: int = 3
    benign_nodule_diameter_mm: tuple[float, float] = (5.0, 9.0)
    benign_nodule_suv: float = 2.8
    benign_nodule_suv_sd: float = 0.4
    benign_nodule_hu: float = 55.0
    biopsy_track_probability: float = 0.5
    biopsy_track_diameter_mm: float = 2.0
    biopsy_track_suv: float = 4.0
    biopsy_track_hu: float = 45.0
    fat_necrosis: int = 1
    fat_necrosis_diameter_mm: tuple[float, float] = (3.0, 6.0)
    fat_necrosis_rim_mm: float = 0.8
    fat_necrosis_rim_suv: float = 2.2
    fat_necrosis_rim_hu: float = 45.0
    necrotic_core_fraction: float = 0.35
    necrotic_core_uptake: float = 0.2
    necrotic_core_hu: float = 35.0
    spicules: int = 4
    spicule_length_mm: tuple[float, float] = (1.5, 3.0)
    spicule_width_mm: float = 0.6
    spicule_uptake: float = 0.5
    dcis_extensions: int = 1
    dcis_length_mm: tuple[float, float] = (4.0, 7.0)
    dcis_width_mm: float = 1.0
    dcis_suv: float = 1.5
    dcis_hu: float = 45.0
    fibroglandular_bands: int = 2
    band_length_mm: tuple[float, float] = (8.0, 14.0)
    band_width_mm: float = 2.0
    band_suv: float = 1.6
    band_hu: float = 40.0

    @classmethod
    def for_version(cls, version: int) -> ConfounderConfig:
        """The components of the specimen phantom's ``version`` (2 or later; version 1 has none): version 3 has the
        wider, hotter and commoner biopsy track of the module docstring, everything else as in version 2."""
        if version >= 3:
            return cls(biopsy_track_probability=0.8, biopsy_track_diameter_mm=3.0, biopsy_track_suv=5.0)
        return cls()


@dataclass(eq=False)
class Confounders:
    """The components drawn for one specimen, as boolean masks on the CT grid (array order).

    ``benign`` maps each benign component's name to ``(mask, suv, hu)``; ``suv`` is a number or an array on the grid
    (a value per nodule). ``oil`` is the fat inside the fat-necrosis rims. ``spicules`` and ``dcis`` are malignant and
    join the tumour; ``necrotic`` is the tumour's necrotic core. Their values are in :class:`ConfounderConfig`.
    """

    benign: dict[str, tuple[np.ndarray, float | np.ndarray, float]]
    oil: np.ndarray
    spicules: np.ndarray
    dcis: np.ndarray
    necrotic: np.ndarray


def segment_mask(
    grid: Grid, start_index: np.ndarray, direction: np.ndarray, length_mm: float, radius_mm: float
) -> np.ndarray:
    """The voxels within ``radius_mm`` of the straight segment from ``start_index`` (array indices) along
    ``direction`` (array order, normalised here) for ``length_mm`` — a wire, a track, a spicule."""
    direction = np.asarray(direction, float) / np.linalg.norm(direction)
    spacing = np.asarray(grid.spacing)
    p0 = np.asarray(start_index, float) * spacing
    p1 = p0 + length_mm * direction
    # only voxels in the segment's bounding box (+ radius + a voxel) can be on it
    pad = radius_mm + spacing.max()
    lo = np.maximum(0, np.floor((np.minimum(p0, p1) - pad) / spacing)).astype(int)
    hi = np.minimum(grid.shape, np.ceil((np.maximum(p0, p1) + pad) / spacing) + 1).astype(int)
    mask = np.zeros(grid.shape, dtype=bool)
    if np.any(hi <= lo):
        return mask
    axes = [np.arange(a, b) * s - p for a, b, s, p in zip(lo, hi, spacing, p0, strict=True)]
    rel = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    t = np.clip(rel @ direction, 0.0, length_mm)
    dist = np.linalg.norm(rel - t[..., None] * direction, axis=-1)
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = dist <= radius_mm
    return mask


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def _free_centre(
    allowed: np.ndarray, depth: np.ndarray, radius_mm: float, rng: np.random.Generator
) -> np.ndarray | None:
    """A random voxel of ``allowed`` at least ``radius_mm`` below the surface (``None`` if there is none)."""
    candidates = np.argwhere(allowed & (depth >= radius_mm + 0.5))
    return None if len(candidates) == 0 else candidates[rng.integers(len(candidates))]


def draw_confounders(
    grid: Grid,
    specimen: np.ndarray,
    tumour: np.ndarray,
    depth: np.ndarray,
    margin_mm: float,
    cfg: ConfounderConfig,
    rng: np.random.Generator,
) -> Confounders:
    """Draw every component of ``cfg`` for one specimen (``depth``: mm below the specimen surface; ``margin_mm``:
    the requested margin, 0 for a positive one — malignant additions stay at least that deep)."""
    import edt

    spacing = np.asarray(grid.spacing)
    tumour_clearance = edt.edt(~tumour, anisotropy=grid.spacing, black_border=False)
    occupied = tumour.copy()
    benign: dict[str, tuple[np.ndarray, float | np.ndarray, float]] = {}

    nodules = np.zeros(grid.shape, bool)
    nodule_suv = np.zeros(grid.shape, np.float32)
    for _ in range(cfg.benign_nodules):
        d = rng.uniform(*cfg.benign_nodule_diameter_mm)
        radii = d / 2.0 * rng.uniform(0.8, 1.2, size=3)  # oval
        free = specimen & ~occupied & (tumour_clearance > radii.max() + 1.5)
        centre = _free_centre(free, depth, float(radii.max()), rng)
        if centre is None:
            continue
        blob = ellipsoid_level(grid, centre, radii) < 1.0  # smooth: well circumscribed
        blob &= specimen & ~occupied
        nodules |= blob
        nodule_suv[blob] = max(0.5, rng.normal(cfg.benign_nodule_suv, cfg.benign_nodule_suv_sd))
        occupied |= ndimage.binary_dilation(blob, iterations=2)
    benign["benign_nodule"] = (nodules, nodule_suv, cfg.benign_nodule_hu)

    necrosis = np.zeros(grid.shape, bool)
    oil = np.zeros(grid.shape, bool)
    for _ in range(cfg.fat_necrosis):
        d = rng.uniform(*cfg.fat_necrosis_diameter_mm)
        free = specimen & ~occupied & (tumour_clearance > d / 2 + 1.5)
        centre = _free_centre(free, depth, d / 2.0, rng)
        if centre is None:
            continue
        level = ellipsoid_level(grid, centre, np.full(3, d / 2.0))
        inner = 1.0 - cfg.fat_necrosis_rim_mm / (d / 2.0)
        ring = (level < 1.0) & (level >= inner) & specimen & ~occupied
        necrosis |= ring
        oil |= (level < inner) & specimen & ~occupied
        occupied |= ndimage.binary_dilation(level < 1.0, iterations=2)
    benign["fat_necrosis_rim"] = (necrosis, cfg.fat_necrosis_rim_suv, cfg.fat_necrosis_rim_hu)

    bands = np.zeros(grid.shape, bool)
    for _ in range(cfg.fibroglandular_bands):
        start = _free_centre(specimen & ~occupied, depth, cfg.band_width_mm, rng)
        if start is None:
            continue
        length = rng.uniform(*cfg.band_length_mm)
        bands |= segment_mask(grid, start, _unit(rng), length, cfg.band_width_mm / 2.0) & specimen & ~tumour
    benign["fibroglandular_band"] = (bands, cfg.band_suv, cfg.band_hu)

    track = np.zeros(grid.shape, bool)
    if rng.random() < cfg.biopsy_track_probability:
        centre = np.mean(np.argwhere(tumour), axis=0)
        direction = _unit(rng)
        length = float(np.linalg.norm(np.asarray(grid.shape) * spacing))  # out through the surface
        track = segment_mask(grid, centre, direction, length, cfg.biopsy_track_diameter_mm / 2.0)
        track &= specimen & ~tumour
    benign["biopsy_track"] = (track, cfg.biopsy_track_suv, cfg.biopsy_track_hu)

    # malignant additions: thin, so the PET does not resolve them; never closer to the surface than the margin
    surface = np.argwhere(tumour & ~ndimage.binary_erosion(tumour))
    allowed = specimen & (depth >= margin_mm - 1e-6) if margin_mm > 0 else specimen
    centre = np.mean(np.argwhere(tumour), axis=0)
    added = {"spicule": np.zeros(grid.shape, bool), "dcis": np.zeros(grid.shape, bool)}
    pieces = [("spicule", cfg.spicule_length_mm, cfg.spicule_width_mm)] * cfg.spicules
    pieces += [("dcis", cfg.dcis_length_mm, cfg.dcis_width_mm)] * cfg.dcis_extensions
    for kind, lengths, width in pieces:
        length = rng.uniform(*lengths)
        nominal = np.pi * (width / 2.0) ** 2 * length / grid.voxel_volume_mm3
        for _attempt in range(10):  # a start on the face the margin clips would leave almost nothing: draw again
            start = surface[rng.integers(len(surface))]
            outward = (start - centre) * spacing
            direction = outward / (np.linalg.norm(outward) + 1e-9) + 0.4 * _unit(rng)
            piece = segment_mask(grid, start, direction, length, width / 2.0) & allowed & ~tumour
            if piece.sum() >= 0.5 * nominal:
                break
        added[kind] |= piece
    added["spicule"] &= ~added["dcis"]

    core = np.zeros(grid.shape, bool)
    if cfg.necrotic_core_fraction > 0:
        extent = [np.flatnonzero(tumour.any(axis=tuple(j for j in range(3) if j != a))) for a in range(3)]
        radii = np.array([(e[-1] - e[0] + 1) * s / 2.0 for e, s in zip(extent, spacing, strict=True)])
        core = irregular_blob(grid, centre, cfg.necrotic_core_fraction * radii, 0.2, 3.0, rng) & tumour
    return Confounders(benign, oil, added["spicule"], added["dcis"], core)
