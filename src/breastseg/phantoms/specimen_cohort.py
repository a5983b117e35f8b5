"""A synthetic cohort for the specimen study's protocol: 2D lamellae with labels, and 3D specimens with margins.

The study had two data sets (Maris et al. 2025, Methods): (1) lamellae — 2D micro-PET-CT slices with
histopathology labels (benign, malignant, unknown) of NST, ILC and DCIS patients, for training and the
segmentation tables; (2) whole 3D specimens with the histopathological margin status, for the margin tables.
A few specimens belonged to patients whose lamellae were in (1), so the ensemble's leakage guard mattered. The
cohort reproduces that layout from phantoms (deterministic by seed)::

    DIR/cohort.json                    what was generated (configuration, patients, specimens)
    DIR/lamellae/manifest.csv          one row per slice (paths relative to the CSV)
    DIR/lamellae/<patient>/...         2D NIfTI: CT (HU), PET (Bq/ml, on the CT grid), label
    DIR/specimens/manifest.csv         one row per specimen: case_id, patient_id, tumour_type, ct, pet,
                                       pet_info, tumour, margin_mm, margin_status
    DIR/specimens/<case>/...           ct.nii.gz, pet.nii.gz, tumour.nii.gz, specimen.nii.gz, truth.json

The first ``shared_specimens`` specimens are the 3D phantoms of the first lamella patients (same patient id).
Writing a smaller cohort over a larger one removes the earlier cohort's patient and case folders that the new
manifests do not list (what breastseg wrote there; anything else in them stays).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from breastseg._version import __version__
from breastseg.errors import InputError
from breastseg.io.atomic import remove_written, write_json
from breastseg.io.tables import write_csv_rows
from breastseg.phantoms.base import Phantom, write_phantom
from breastseg.phantoms.specimen import (
    TUMOUR_TYPE_PRESETS,
    SpecimenPhantomConfig,
    make_lamellae,
    make_specimen_phantom,
    write_lamellae,
)

#: the margins of the test specimens of the default cohort: 8 positive, 12 negative at 0.5–5 mm
DEFAULT_SPECIMEN_MARGINS_MM: tuple[float | None, ...] = (None,) * 8 + (
    0.5,
    0.5,
    1.0,
    1.0,
    1.5,
    2.0,
    2.0,
    3.0,
    3.0,
    4.0,
    5.0,
    5.0,
)


def specimen_margins(n: int) -> tuple[float | None, ...]:
    """Margins of ``n`` test specimens: 40 % positive (``None``), the rest spread over 0.5–5 mm."""
    n_pos = round(0.4 * n)
    negatives = DEFAULT_SPECIMEN_MARGINS_MM[8:]
    n_neg = n - n_pos
    return (None,) * n_pos + tuple(negatives[int(i * len(negatives) / n_neg)] for i in range(n_neg))


_LAMELLA_MARGINS_MM: tuple[float | None, ...] = (None, 1.0, 3.0)
SPECIMEN_COLUMNS = (
    "case_id",
    "patient_id",
    "tumour_type",
    "ct",
    "pet",
    "pet_info",
    "tumour",
    "margin_mm",
    "margin_status",
)


@dataclass(frozen=True)
class CohortConfig:
    """How many patients of each tumour type give lamellae, and which 3D specimens are added.

    ``specimen_margins_mm``: one entry per 3D specimen (``None`` = positive margin). ``ct_spacing_mm`` applies
    to every phantom (0.3 mm keeps the whole study within CPU minutes; the study's scanners had ~0.1 mm).
    ``phantom_version``: the specimen phantom generator (:class:`~breastseg.phantoms.specimen.SpecimenPhantomConfig`;
    2 adds benign FDG-avid tissue and a heterogeneous tumour, and bread-loafs the lamellae); ``placement``: how
    a negative margin's tumour meets it (clipped flat or translated, as there).
    """

    nst_patients: int = 15
    ilc_patients: int = 0
    dcis_patients: int = 0
    lamellae_per_patient: int = 3
    specimen_margins_mm: tuple[float | None, ...] = DEFAULT_SPECIMEN_MARGINS_MM
    shared_specimens: int = 3
    ct_spacing_mm: float = 0.3
    pet_spacing_mm: float = 0.6
    seed: int = 0
    phantom_version: int = 1
    placement: Literal["clipped", "translated"] = "clipped"

    @property
    def lamella_span(self) -> Literal["tumour", "specimen"]:
        """Version 1 cuts ``lamellae_per_patient`` slices through the tumour; versions 2 and 3 bread-loaf the whole
        specimen (tumour-free and peripheral lamellae too)."""
        return "specimen" if self.phantom_version >= 2 else "tumour"

    def __post_init__(self) -> None:
        if self.nst_patients < 1:
            raise InputError("the cohort needs at least one NST patient")
        if self.shared_specimens > min(self.nst_patients, len(self.specimen_margins_mm)):
            raise InputError("shared specimens cannot outnumber the NST patients or the specimens")


def phantom_config(tumour_type: str, seed: int, margin_mm: float | None, cohort: CohortConfig) -> SpecimenPhantomConfig:
    """The phantom configuration of one patient: the tumour type's preset at the cohort's spacings."""
    if tumour_type not in TUMOUR_TYPE_PRESETS:
        raise InputError(f"unknown tumour type {tumour_type!r}; one of {sorted(TUMOUR_TYPE_PRESETS)}")
    size = (30.0, 36.0, 44.0) if (margin_mm or 0.0) > 3 else (26.0, 32.0, 40.0)
    preset: dict[str, Any] = dict(TUMOUR_TYPE_PRESETS[tumour_type])
    return dataclasses.replace(
        SpecimenPhantomConfig(
            seed=seed,
            margin_mm=margin_mm,
            specimen_size_mm=size,
            ct_spacing_mm=cohort.ct_spacing_mm,
            pet_spacing_mm=cohort.pet_spacing_mm,
            version=cohort.phantom_version,
            placement=cohort.placement,
        ),
        **preset,
    )


def _patients(cohort: CohortConfig) -> list[tuple[str, str, int]]:
    """(patient id, tumour type, seed) of every lamella patient."""
    out = []
    for tumour_type, n, base in (
        ("NST", cohort.nst_patients, 1000),
        ("ILC", cohort.ilc_patients, 3000),
        ("DCIS", cohort.dcis_patients, 4000),
    ):
        for i in range(n):
            out.append((f"{tumour_type.lower()}{i:03d}", tumour_type, cohort.seed * 10_000 + base + i))
    return out


def write_cohort(
    out_dir: str | Path, cohort: CohortConfig | None = None, progress: Callable[[str], None] | None = None
) -> dict[str, Path]:
    """Generate and write the cohort (see the module docstring); returns the two manifests and cohort.json."""
    cohort = cohort or CohortConfig()
    say = progress or (lambda _text: None)
    out = Path(out_dir)
    lam_dir, spec_dir = out / "lamellae", out / "specimens"
    slice_rows: list[dict[str, Any]] = []
    patients = _patients(cohort)
    shared: dict[str, Phantom] = {}
    for i, (pid, tumour_type, seed) in enumerate(patients):
        say(f"lamellae of patient {i + 1}/{len(patients)} ({pid})")
        margin = _LAMELLA_MARGINS_MM[i % len(_LAMELLA_MARGINS_MM)]
        ph = make_specimen_phantom(phantom_config(tumour_type, seed, margin, cohort))
        lamellae = make_lamellae(ph, cohort.lamellae_per_patient, span=cohort.lamella_span)
        manifest = write_lamellae(lamellae, lam_dir / pid, pid, tumour_type)
        with manifest.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                slice_rows.append({**row, **{k: f"{pid}/{row[k]}" for k in ("ct", "pet", "label")}})
        if tumour_type == "NST" and len(shared) < cohort.shared_specimens:
            shared[pid] = ph
    lam_manifest = write_csv_rows(slice_rows, lam_dir / "manifest.csv", list(slice_rows[0]))

    specimen_rows = []
    shared_ids = list(shared)
    for j, margin in enumerate(cohort.specimen_margins_mm):
        say(f"specimen {j + 1}/{len(cohort.specimen_margins_mm)}")
        if j < len(shared_ids):
            pid = shared_ids[j]
            ph = shared[pid]
        else:
            pid = f"spec{j:03d}"
            ph = make_specimen_phantom(phantom_config("NST", cohort.seed * 10_000 + 2000 + j, margin, cohort))
        case = f"case{j:03d}"
        write_phantom(ph, spec_dir / case)
        specimen_rows.append(
            {
                "case_id": case,
                "patient_id": pid,
                "tumour_type": "NST",
                "ct": f"{case}/ct.nii.gz",
                "pet": f"{case}/pet.nii.gz",
                "pet_info": f"{case}/truth.json",
                "tumour": f"{case}/tumour.nii.gz",
                "margin_mm": f"{ph.truth['margin_mm']:.4f}",
                "margin_status": ph.truth["margin_status"],
            }
        )
    spec_manifest = write_csv_rows(specimen_rows, spec_dir / "manifest.csv", SPECIMEN_COLUMNS)
    doc = {
        "kind": "breastseg.specimen.cohort",
        "breastseg_version": __version__,
        "config": dataclasses.asdict(cohort),
        "patients": [{"patient_id": p, "tumour_type": t, "seed": s} for p, t, s in patients],
        "specimens": specimen_rows,
        "synthetic": True,
    }
    cohort_json = write_json(doc, out / "cohort.json")
    _remove_stale_folders(lam_dir, {pid for pid, _, _ in patients})
    _remove_stale_folders(spec_dir, {row["case_id"] for row in specimen_rows})
    return {"lamellae": lam_manifest, "specimens": spec_manifest, "cohort": cohort_json}


def _remove_stale_folders(parent: Path, current: set[str]) -> list[Path]:
    """Remove the patient or case folders an earlier, larger cohort left in ``parent`` and this one did not write
    (only what breastseg's marker says it wrote there: :func:`~breastseg.io.atomic.remove_written`)."""
    stale = [p for p in sorted(parent.iterdir()) if p.is_dir() and not p.is_symlink() and p.name not in current]
    return [p for p in stale if remove_written(p)]
