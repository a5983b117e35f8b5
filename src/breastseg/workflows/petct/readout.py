"""From files to biomarkers: the PET in SUVbw and SUL, masks brought onto the PET grid, a bone mask from CT when
none is given, and the written result (``biomarkers.json`` + ``lesions.csv``, each written atomically).

Masks on another grid (a CT-resolution segmentation, say) are resampled onto the PET grid nearest-neighbour
through their physical geometry; a mask that does not overlap the PET at all is an error, not an empty result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import read_image
from breastseg.io.atomic import write_json
from breastseg.io.dicom import SeriesIdentity
from breastseg.io.dicom_meta import PatientInfo, PetInfo, Radiopharmaceutical
from breastseg.io.pet import read_pet_series
from breastseg.io.tables import write_csv_rows
from breastseg.masks import outside_voxels
from breastseg.sanity import check_finite, check_pet_values, check_suv_range
from breastseg.suv import already_suv, normalise_pet_units, scan_datetime, to_suv
from breastseg.workflows.petct.biomarkers import Biomarkers

#: CT bone fallback: cortical and dense trabecular bone, then each axial slice's holes (marrow) filled
BONE_HU = 200.0
MIN_BONE_COMPONENT_ML = 1.0


@dataclass(frozen=True, eq=False)
class LoadedPet:
    """A PET in SUVbw and, when the patient's weight, height and sex are known, SUL; with what it says about whose
    scan it is and when it was acquired. ``sul_missing``: why there is no SUL (``None`` when there is one)."""

    suv: Image
    sul: Image | None
    info: PetInfo
    identity: SeriesIdentity | None  # DICOM only
    sul_missing: str | None = None

    @property
    def acquired(self) -> datetime | None:
        """The scan start (QIBA's rule), when the headers or the PET info give it."""
        try:
            return scan_datetime(self.info)
        except InputError:
            return None


def load_pet(pet_path: str | Path, pet_info_path: str | Path | None = None, pet_units: str | None = None) -> LoadedPet:
    """Read a PET (DICOM, or a file with ``pet_info_path``) into SUVbw and, where the patient data allow, SUL.

    ``pet_units`` (``BQML``, ``SUVbw``, ``SUL``; any letter case) says what a NIfTI/NRRD PET's values are, which the
    file cannot say (it overrides a PET-info's ``units``; DICOM's Units tag is never overridden). A PET already in
    SUVbw needs no PET info at all; a Bq/ml PET without the weight, dose or times is refused with each missing
    item's name (:mod:`breastseg.suv`), never guessed. Without height or sex the SUL is left out
    (``sul_missing`` says why) — the SUV-based read-outs stay available. A PET that is not finite, constant,
    negative or beyond any SUV is refused by :mod:`breastseg.sanity`."""
    pet, info, series = read_pet_series(pet_path, pet_info_path)
    if pet_units:
        units = normalise_pet_units(pet_units)
        if series is not None and (pet.units or "").upper() not in ("", units.upper()):
            raise InputError(f"{pet_path}: --pet-units {pet_units} contradicts the DICOM Units {pet.units}")
        pet = pet.with_array(pet.array, units=units)
    if info is None:
        if already_suv(pet.units):
            info = PetInfo(
                source=f"{pet_path} (values in {pet.units}; no patient data)",
                patient=PatientInfo(),
                radiopharmaceutical=Radiopharmaceutical(),
                units=(pet.units or "").upper(),
            )
        else:
            raise InputError(
                f"{pet_path}: no SUV metadata: read the PET from DICOM, give --pet-info (JSON with weight, injected "
                "dose and times; height and sex for SUL), or --pet-units SUVbw for a PET already in SUV"
            )
    check_pet_values(pet, str(pet_path))
    if (pet.units or "").upper() == "SUL" and info.patient.weight_kg is None:
        raise InputError(
            f"{pet_path}: a PET in SUL needs the patient's weight, height and sex for SUVbw (MTV, TLG and SUVmax "
            "are in SUVbw); give --pet-info"
        )
    suv = to_suv(pet, info, "bw")
    check_suv_range(suv, str(pet_path), "SUVbw")
    sul, why = None, None
    try:
        sul = to_suv(pet, info, "lbm")
    except InputError as exc:
        why = f"SUL needs the patient's weight, height and sex: {exc}"
    return LoadedPet(suv, sul, info, series.identity() if series is not None else None, why)


def load_pet_suv(
    pet_path: str | Path, pet_info_path: str | Path | None = None, pet_units: str | None = None
) -> tuple[Image, Image | None]:
    """The PET as SUVbw and as SUL (Janmahasatian, ``None`` without height and sex): :func:`load_pet`'s images."""
    loaded = load_pet(pet_path, pet_info_path, pet_units)
    return loaded.suv, loaded.sul


def mask_on_grid(mask: Image, target: Image, name: str, whole: bool = True) -> np.ndarray:
    """``mask > 0`` on ``target``'s grid (nearest-neighbour through the physical geometry when the grids
    differ).

    Refused: a mask of fractional or negative values (a probability map, or a float export whose background is not
    0: thresholding it at 0 would make the whole volume lesion), a mask that does not overlap the PET, and with
    ``whole`` (lesion masks) a mask partly outside the PET's field of view, whose lesions would be cut or dropped
    without a word. Organ masks (``whole=False``) may extend beyond the PET (a CT-based segmentation).
    """
    if mask.ndim != target.ndim:
        raise InputError(f"{name}: a {mask.ndim}D mask for a {target.ndim}D PET")
    values = mask.array
    if values.dtype.kind == "f" or values.dtype.kind == "i":
        check_finite(values, name)
        low = float(values.min())
        fractional = values.dtype.kind == "f" and not np.all(np.equal(np.mod(values, 1), 0))
        if low < 0 or fractional:
            example = values[(values < 0) | (np.mod(values, 1) != 0)].flat[0]
            raise InputError(
                f"{name}: holds values such as {float(example):g}; a mask holds 0 (background) and positive whole "
                "numbers (labels): threshold a probability map first"
            )
    if mask.grid.same_as(target.grid):
        return np.asarray(values > 0)
    had = int(np.count_nonzero(values > 0))
    if whole and had:
        outside = outside_voxels(mask, target.grid)
        if outside:
            lost_ml = outside * mask.voxel_volume_ml
            raise InputError(
                f"{name}: {outside} of its {had} voxels ({lost_ml:.2f} ml) lie outside the PET's field of "
                "view; their lesions would be cut or lost: check the mask's geometry (it must be of this patient's "
                "scan)"
            )
    moved = np.asarray(mask.with_array((values > 0).astype(np.uint8)).resample_onto(target, order=0).array > 0)
    if had and not moved.any():
        raise InputError(f"{name}: the mask does not overlap the PET's field of view (check its geometry)")
    return moved


def read_mask_on(path: str | Path, target: Image, name: str, whole: bool = True) -> np.ndarray:
    """Read a mask file (any format :func:`breastseg.io.read_image` reads) onto ``target``'s grid
    (:func:`mask_on_grid`; ``whole``: refuse a mask that reaches beyond the PET)."""
    return mask_on_grid(read_image(path), target, f"{name} {path}", whole)


def bone_from_ct(ct: Image, target: Image, threshold_hu: float = BONE_HU) -> np.ndarray:
    """A documented fallback bone mask: CT (linear) onto the PET grid, ≥ ``threshold_hu`` HU, each axial slice's
    enclosed holes (marrow) filled, components under 1 ml dropped (calcifications, contrast, noise). Coarse — a
    PET Bone Index from it is an approximation; give a bone mask (or install TotalSegmentator) for a real one."""
    hu = ct.resample_onto(target, order=1, fill=-1000.0).array
    bone = hu >= threshold_hu
    bone = np.stack([ndimage.binary_fill_holes(s) for s in bone]) if bone.ndim == 3 else ndimage.binary_fill_holes(bone)
    labels, n = ndimage.label(bone)
    if n:
        sizes = ndimage.sum_labels(bone, labels, np.arange(1, n + 1)) * target.voxel_volume_ml
        keep = np.concatenate([[False], sizes >= MIN_BONE_COMPONENT_ML])
        bone = keep[labels]
    return np.asarray(bone, bool)


LESION_COLUMNS = (
    "label",
    "site",
    "voxels",
    "volume_ml",
    "suv_max",
    "suv_mean",
    "tlg",
    "suv_peak",
    "sul_peak",
    "sul_max",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
)


def scan_title(result: Biomarkers) -> str:
    """The MIP figure's heading: lesion count, SULpeak (or SUVmax without SUL), MTV (ml) and TLG, each to the
    precision it is measured to."""
    parts = [f"{result.lesion_count} lesion{'s' if result.lesion_count != 1 else ''}"]
    if result.sul_peak is not None:
        parts.append(f"SULpeak {result.sul_peak:.2f}")
    if result.suv_max is not None:
        parts.append(f"SUVmax {result.suv_max:.2f}")
    parts.append(f"MTV {result.mtv_ml:.1f} ml")
    parts.append(f"TLG {result.tlg:.0f}")
    return " · ".join(parts)


def write_biomarkers(
    result: Biomarkers,
    pet: Image,
    out_dir: str | Path,
    provenance: Mapping[str, Any] | None = None,
    lesions: np.ndarray | None = None,
) -> dict[str, Path]:
    """``biomarkers.json`` (the scan's biomarkers, the SULpeak definition used, every lesion, provenance) and
        ``lesions.csv`` (one row per lesion; centroids in patient LPS mm); with the ``lesions`` mask (on ``pet``'s
        grid, ``pet`` in SUVbw) also ``mip.png``, the PET's maximum-intensity projection with the lesions outlined and
    numbered as in ``lesions.csv``, under the scan's biomarkers (:func:`scan_title`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for lesion in result.lesions:
        x, y, z = pet.grid.index_to_world(lesion.centroid_voxel)  # array order (z, y, x) in, LPS out
        row = {k: v for k, v in asdict(lesion).items() if k in LESION_COLUMNS}
        rows.append({**row, "centroid_x_mm": round(x, 2), "centroid_y_mm": round(y, 2), "centroid_z_mm": round(z, 2)})
    csv_path = write_csv_rows(rows, out / "lesions.csv", LESION_COLUMNS)
    doc = {
        "units": {
            "suv": "SUVbw (g/ml)",
            "sul": "SUL (lean body mass, Janmahasatian)" if result.sul_missing is None else "not available",
            "volume": "ml",
            "tlg": "SUVbw·ml",
        },
        **{k: v for k, v in result.to_dict().items() if k != "lesions"},
        "lesions": rows,
        "provenance": dict(provenance or {}),
    }
    written = {"json": write_json(doc, out / "biomarkers.json"), "csv": csv_path}
    if lesions is not None:
        from breastseg.workflows.petct.figures import MipPanel, mip_figure

        panel = MipPanel("coronal MIP", pet, lesions, result.lesions)
        written["mip"] = mip_figure([panel], out / "mip.png", title=scan_title(result))
    return written
