"""Baseline and follow-up together: scan folders in, the baseline brought onto the follow-up, new lesions found,
biomarker changes and the PERCIST category out.

**Scan folder** (what ``breastseg phantom petct`` writes; any of these names): the PET as ``pet.nii.gz`` /
``pet.nrrd`` / ``pet.mha`` or a DICOM folder ``pet/``; the lesion mask ``lesions.nii.gz`` (any grid); optional
``liver.nii.gz``, ``bone.nii.gz``; for a PET without DICOM headers, ``pet_info.json`` or a ``truth.json`` with a
``"pet"`` section, or ``pet_units`` for a PET already in SUV. An **autoPET study folder** is a scan folder too:
``SUV.nii.gz`` (SUVbw, so no PET info is needed; SUL only with a ``pet_info.json`` giving weight, height and
sex), ``CTres.nii.gz`` and ``SEG.nii.gz`` (read where ``lesions.nii.gz`` is asked for and absent); see
:func:`read_patients` for the whole autoPET tree.

**New lesions.** The baseline PET is registered rigidly onto the follow-up PET (mutual information,
:func:`breastseg.registration.register_rigid`) and the baseline lesion mask warped with it (nearest neighbour).
A follow-up lesion is *new* when no voxel of it lies within ``tolerance_mm`` (default 10 mm: growth and
residual misregistration) of a warped baseline lesion.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io.dicom import SeriesIdentity
from breastseg.learn.splits import stratified_group_folds
from breastseg.masks import label_components
from breastseg.registration import IntensityRegistration, Registration, register_rigid
from breastseg.workflows.petct.biomarkers import Biomarkers, PeakDefinition, compute_biomarkers
from breastseg.workflows.petct.readout import LoadedPet, load_pet, read_mask_on
from breastseg.workflows.petct.response import (
    NOT_ASSESSABLE,
    LiverReference,
    PercistResult,
    liver_reference,
    percent_changes,
    percist,
)

_PET_NAMES = ("pet.nii.gz", "pet.nii", "pet.nrrd", "pet.mha", "pet", "SUV.nii.gz")
#: PET files whose name says their units (autoPET's SUV.nii.gz is SUVbw)
_UNITS_BY_NAME = {"SUV.nii.gz": "SUVbw"}
_INFO_NAMES = ("pet_info.json", "truth.json")
#: the lesion mask's default name, and autoPET's name for it (read when the default is absent)
LESION_MASK = "lesions.nii.gz"
AUTOPET_MASK = "SEG.nii.gz"
#: files a scan folder is read from (with the CT's names and the lesion mask's): a prediction never takes one
SCAN_INPUT_NAMES = (*_PET_NAMES, *_INFO_NAMES, "liver.nii.gz", "bone.nii.gz", LESION_MASK, AUTOPET_MASK)
#: the biomarkers whose change is reported
CHANGE_KEYS = ("sul_peak", "suv_max", "suv_mean", "mtv_ml", "tlg", "lesion_count", "pet_bone_index", "pet_liver_index")


@dataclass(eq=False)
class Scan:
    """One time point: PET in SUVbw and SUL (``None`` without the patient's height and sex: ``sul_missing`` says
    why), lesion / liver / bone masks on the PET grid, where it came from, and (when the headers or the PET info
    say) when and of whom it was acquired."""

    folder: Path
    suv: Image
    sul: Image | None
    lesions: np.ndarray
    liver: np.ndarray | None
    bone: np.ndarray | None
    acquired: datetime | None = None
    identity: SeriesIdentity | None = None
    sex: str | None = None
    sul_missing: str | None = None


def first_existing(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` that exists in ``folder`` (a file or a DICOM folder), else ``None``."""
    return next((folder / n for n in names if (folder / n).exists()), None)


@dataclass(frozen=True)
class PatientScans:
    """One patient's scan folders (``followup`` may be ``None`` for a baseline-only cohort) and, optionally, the
    site (centre, scanner) the scans come from: cross-validation folds are balanced by it."""

    patient_id: str
    baseline: Path
    followup: Path | None = None
    site: str = ""

    def scan(self, timepoint: str) -> Path:
        """The baseline or follow-up scan folder; a missing follow-up is an error naming the patient."""
        if timepoint == "followup":
            if self.followup is None:
                raise InputError(f"patient {self.patient_id}: no follow-up scan in the patients table")
            return self.followup
        return self.baseline

    def mask_path(self, timepoint: str, name: str, out_dir: str | Path | None = None) -> Path:
        """Where a mask ``name`` of the ``timepoint`` scan lives: in the scan's folder, or with ``out_dir`` (a
        predictions folder, ``petct predict --out``) at ``out_dir/<patient_id>/<timepoint>/name`` — the one layout
        that ``petct predict`` writes and ``petct evaluate --pred-dir`` reads."""
        if out_dir is None:
            return self.scan(timepoint) / name
        return Path(out_dir) / (self.patient_id or "scan") / timepoint / name


def patient_folds(patients: Sequence[PatientScans], n_folds: int, seed: int = 0) -> list[list[str]]:
    """The held-out patient ids of each cross-validation fold: patients grouped (a patient's scans stay
    together), folds balanced by site. ``petct train`` and the nnU-Net export's ``splits_final.json`` both use
    these, so the native and the nnU-Net ensembles hold out the same patients."""
    return stratified_group_folds({p.patient_id: p.site or "all" for p in patients}, n_folds, seed)


def read_patients_csv(path: str | Path) -> list[PatientScans]:
    """``patient_id, baseline[, followup][, site]`` rows (scan folders relative to the CSV's folder)."""
    from breastseg.io.tables import read_csv_rows

    path = Path(path)
    rows = read_csv_rows(path, ("patient_id", "baseline"), "patients table")
    base = path.parent
    return [
        PatientScans(
            r["patient_id"],
            base / r["baseline"],
            base / r["followup"] if r.get("followup") else None,
            (r.get("site") or "").strip(),
        )
        for r in rows
    ]


def read_patients(path: str | Path) -> list[PatientScans]:
    """The patients of a patients table (:func:`read_patients_csv`) or of an autoPET tree
    (:func:`read_autopet`), whichever ``path`` is."""
    path = Path(path)
    return read_autopet(path) if path.is_dir() else read_patients_csv(path)


_STUDY_DATE = re.compile(r"^(\d{2})-(\d{2})-(\d{4})")


def _study_order(folder: Path) -> tuple[str, str]:
    """autoPET study folders start with the study date as MM-DD-YYYY; chronological order, then the name."""
    m = _STUDY_DATE.match(folder.name)
    return (f"{m.group(3)}{m.group(1)}{m.group(2)}" if m else "", folder.name)


def read_autopet(root: str | Path) -> list[PatientScans]:
    """The patients of an autoPET tree: ``root/<patient>/<study>/`` with ``SUV.nii.gz``, ``CTres.nii.gz`` and
    ``SEG.nii.gz`` in each study folder (FDG-PET-CT-Lesions, TCIA). A patient's study is its baseline; a patient
    with two studies gets the later one (by the date the folder name starts with) as its follow-up; more than
    two is refused, naming the patient, rather than some studies being left out unseen."""
    root = Path(root)
    patients = []
    for patient in sorted(p for p in root.iterdir() if p.is_dir()):
        studies = sorted((s for s in patient.iterdir() if (s / "SUV.nii.gz").is_file()), key=_study_order)
        if not studies:
            continue
        if len(studies) > 2:
            raise InputError(
                f"{patient}: {len(studies)} studies; breastseg pairs a baseline with one follow-up: give a "
                "patients table naming the two scans to use"
            )
        patients.append(PatientScans(patient.name, studies[0], studies[1] if len(studies) == 2 else None))
    if not patients:
        raise InputError(f"{root}: no autoPET studies (<patient>/<study>/SUV.nii.gz) and not a patients table")
    return patients


def read_scan_pet(folder: str | Path, pet_units: str | None = None) -> tuple[Image, Image | None]:
    """The PET of a scan folder in SUVbw and SUL (see the module docstring for the names looked for)."""
    loaded = load_scan_pet(Path(folder), pet_units)
    return loaded.suv, loaded.sul


def load_scan_pet(folder: Path, pet_units: str | None = None) -> LoadedPet:
    """The PET of a scan folder (see the module docstring), its units from ``pet_units``, else from its name
    (autoPET's ``SUV.nii.gz``), else from the PET info or DICOM."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such scan folder")
    pet_path = first_existing(folder, _PET_NAMES)
    if pet_path is None:
        raise InputError(f"{folder}: no PET ({', '.join(_PET_NAMES)})")
    info = first_existing(folder, _INFO_NAMES) if not pet_path.is_dir() else None
    return load_pet(pet_path, info, pet_units or _UNITS_BY_NAME.get(pet_path.name))


def lesion_mask_path(folder: Path, mask_name: str = LESION_MASK) -> Path:
    """The lesion mask ``mask_name`` of a scan folder; the default name falls back to autoPET's ``SEG.nii.gz``."""
    path = folder / mask_name
    if not path.exists() and mask_name == LESION_MASK and (folder / AUTOPET_MASK).exists():
        return folder / AUTOPET_MASK
    return path


def read_scan(folder: str | Path, mask_name: str = LESION_MASK, pet_units: str | None = None) -> Scan:
    """Read a scan folder (see the module docstring)."""
    folder = Path(folder)
    pet = load_scan_pet(folder, pet_units)
    suv = pet.suv
    mask_path = lesion_mask_path(folder, mask_name)
    if not mask_path.exists():
        raise InputError(f"{folder}: no lesion mask {mask_name}")
    organs = {
        name: read_mask_on(path, suv, f"{name} mask", whole=False)
        if (path := folder / f"{name}.nii.gz").exists()
        else None
        for name in ("liver", "bone")
    }
    lesions = read_mask_on(mask_path, suv, "lesion mask")
    sex = (pet.info.patient.sex or "").strip().upper()[:1] or None
    return Scan(
        folder, suv, pet.sul, lesions, organs["liver"], organs["bone"], pet.acquired, pet.identity, sex, pet.sul_missing
    )


def check_same_patient_in_order(baseline: Scan, followup: Scan, override: str = "") -> None:
    """Refuse a baseline and follow-up of different patients (DICOM PatientID, or the patient's sex) or in the
    wrong order (the follow-up acquired before the baseline), when the scans say so."""
    hint = f"; if that is right all the same, add {override}" if override else ""
    if baseline.identity and followup.identity:
        a, b = baseline.identity.patient_id, followup.identity.patient_id
        if a and b and a != b:
            raise InputError(
                f"{baseline.folder} and {followup.folder} are of different patients (PatientID {a!r} vs {b!r}){hint}"
            )
    if baseline.sex and followup.sex and baseline.sex != followup.sex:
        raise InputError(
            f"{baseline.folder} and {followup.folder} are of different patients (sex {baseline.sex} vs "
            f"{followup.sex}){hint}"
        )
    if baseline.acquired and followup.acquired and followup.acquired <= baseline.acquired:
        raise InputError(
            f"{followup.folder} was acquired {followup.acquired.isoformat(' ')}, not after the baseline "
            f"{baseline.folder} ({baseline.acquired.isoformat(' ')}): swap --baseline and --followup{hint}"
        )


#: the registration is trusted when the log-uptake of the two scans correlates at least this well where they
#: overlap (see :func:`registration_quality`); phantom pairs reach 0.98, a 90°-rotated follow-up 0.52
MIN_REGISTRATION_CORRELATION = 0.6
#: … and the registered baseline covers at least this fraction of the follow-up's field of view
MIN_REGISTRATION_OVERLAP = 0.3
_BODY_SUV = 0.2


def registration_quality(fixed: Image, moving: Image, registration: Registration) -> dict[str, float]:
    """How well the baseline PET (``moving``) lies on the follow-up (``fixed``) after ``registration``.

    ``correlation``: Pearson's r of log(1 + SUVbw) of the two, over the voxels both cover where either shows the
    body (SUVbw > 0.2): organs with their own uptake (brain, heart, liver, bladder, kidneys) must land on
    themselves. Unlike the mutual-information value, it does not depend on the histogram binning, and lesion
    changes between the scans move it little. ``overlap``: the fraction of the follow-up's grid the warped
    baseline covers.
    """
    warped = registration.warp(moving, fixed, order=1).array
    covered = registration.warp(moving.with_array(np.ones(moving.shape, np.uint8)), fixed, order=0).array > 0
    region = covered & ((fixed.array > _BODY_SUV) | (warped > _BODY_SUV))
    overlap = float(covered.mean())
    if region.sum() < 10:
        return {"correlation": 0.0, "overlap": overlap}
    a, b = np.log1p(np.clip(fixed.array[region], 0, None)), np.log1p(np.clip(warped[region], 0, None))
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    return {"correlation": round(r, 4), "overlap": round(overlap, 4)}


def scan_biomarkers(scan: Scan, peak_definition: PeakDefinition | str = PeakDefinition.STUDY) -> Biomarkers:
    sul = scan.sul.array if scan.sul is not None else None
    return compute_biomarkers(
        scan.suv.array, sul, scan.lesions, scan.suv.spacing, scan.bone, scan.liver, peak_definition, scan.sul_missing
    )


def new_lesions(
    followup_lesions: np.ndarray, baseline_on_followup: np.ndarray, spacing: tuple[float, ...], tolerance_mm: float
) -> list[int]:
    """Labels (26-connected components of ``followup_lesions``, numbered as
    :func:`breastseg.masks.label_components`) of follow-up lesions farther than ``tolerance_mm`` from every
    baseline lesion voxel."""
    import edt

    labels, n = label_components(followup_lesions)
    if not baseline_on_followup.any():
        return list(range(1, n + 1))
    distance = edt.edt(~np.asarray(baseline_on_followup, bool), anisotropy=tuple(float(s) for s in spacing))
    return [k for k in range(1, n + 1) if distance[labels == k].min() > tolerance_mm]


def _for_change(markers: dict[str, Any]) -> dict[str, float | None]:
    """The biomarkers whose change is reported; a scan without lesions has SULpeak, SUVmax and SUVmean 0 (its
    change from a scan with lesions is −100 %, as nothing remains)."""
    values = {k: markers[k] for k in CHANGE_KEYS}
    if markers["lesion_count"] == 0:
        values.update(sul_peak=0.0, suv_max=0.0, suv_mean=0.0)
    return values


@dataclass(frozen=True)
class ResponseAssessment:
    """The response of one patient between two scans (``response.json`` is :meth:`to_json`).

    Attributes:
        assessable: the registration passed (:func:`registration_quality`); when False ``percist.category`` is
            ``"not assessable"`` and no new lesion is counted.
        percist: the PERCIST category with what decided it (SULpeak of both scans, change % and in SUL).
        liver: the baseline liver reference (mean and SD of SUL) when a liver mask was given.
        baseline, followup: each scan's biomarkers (SULpeak, SUVmax, MTV ml, TLG, indices).
        new_lesion_labels: follow-up lesion labels with no baseline lesion within ``tolerance_mm``.
        tolerance_mm: how far (mm) a follow-up lesion may lie from a registered baseline lesion and be the same.
        registration: the rigid transform found (baseline PET onto follow-up PET).
        registration_quality: its log-uptake ``correlation`` and ``overlap``.
        sources: the baseline's and follow-up's folders.
    """

    assessable: bool
    percist: PercistResult
    liver: LiverReference | None
    baseline: Biomarkers
    followup: Biomarkers
    new_lesion_labels: list[int]
    tolerance_mm: float
    registration: IntensityRegistration
    registration_quality: dict[str, float]
    sources: tuple[str, str]

    @property
    def new_lesion_count(self) -> int | None:
        """How many new lesions; ``None`` when not assessable (none can be counted then)."""
        return len(self.new_lesion_labels) if self.assessable else None

    @property
    def change_percent(self) -> dict[str, float | None]:
        """Δ% of each biomarker from baseline to follow-up (``None`` where the baseline is 0)."""
        return percent_changes(_for_change(self.baseline.to_dict()), _for_change(self.followup.to_dict()))

    def to_json(self) -> dict[str, Any]:
        c, b, a = self.percist, self.baseline.to_dict(), self.followup.to_dict()
        return {
            "assessable": self.assessable,
            "percist": {
                "category": c.category,
                "responder": c.responder,
                "reason": c.reason,
                "baseline_sul_peak": c.baseline_sul_peak,
                "followup_sul_peak": c.followup_sul_peak,
                "change_percent": c.change_percent,
                "change_sul": c.change_sul,
                "liver_reference": None
                if self.liver is None
                else {"mean_sul": self.liver.mean_sul, "sd_sul": self.liver.sd_sul},
                "sul_peak_definition": self.baseline.sul_peak_definition,
            },
            "compared": {"baseline": _for_change(b), "followup": _for_change(a)},
            "change_percent": self.change_percent,
            "new_lesions": {
                "count": self.new_lesion_count,
                "followup_labels": self.new_lesion_labels,
                "tolerance_mm": self.tolerance_mm,
            },
            "registration": {
                "method": "rigid, Mattes mutual information (baseline PET onto follow-up PET)",
                "metric_value": self.registration.metric_value,
                "iterations": self.registration.iterations,
                "log_uptake_correlation": self.registration_quality["correlation"],
                "overlap": self.registration_quality["overlap"],
                "passed": self.assessable,
                "criteria": {"min_correlation": MIN_REGISTRATION_CORRELATION, "min_overlap": MIN_REGISTRATION_OVERLAP},
            },
            "baseline": {k: v for k, v in b.items() if k != "lesions"},
            "followup": {k: v for k, v in a.items() if k != "lesions"},
            "sources": {"baseline": self.sources[0], "followup": self.sources[1]},
        }


def assess_response(
    baseline: Scan,
    followup: Scan,
    peak_definition: PeakDefinition | str = PeakDefinition.STUDY,
    tolerance_mm: float = 10.0,
    check_pairing: bool = True,
) -> tuple[ResponseAssessment, Image]:
    """Biomarkers of both scans, their Δ%, new lesions and the PERCIST category; also the baseline lesion mask on
    the follow-up grid (the follow-up network's fourth channel).

    The scans must be of one patient and in time order when they say so (:func:`check_same_patient_in_order`,
    skipped without ``check_pairing``). When the registration fails (:func:`registration_quality` below
    :data:`MIN_REGISTRATION_CORRELATION` or :data:`MIN_REGISTRATION_OVERLAP`) the category is
    ``"not assessable"`` and no new lesion is counted: never a category after a failed registration.
    """
    if check_pairing:
        check_same_patient_in_order(baseline, followup, override="--allow-pair-mismatch")
    for scan in (baseline, followup):
        if scan.sul is None:  # PERCIST's thresholds (30 %, 0.8 SUL, the liver's SUL) are defined on SUL
            raise InputError(
                f"{scan.folder}: PERCIST is read on SULpeak and this PET has no SUL ({scan.sul_missing}); give a "
                "pet_info.json with patient_weight_kg, patient_height_m and patient_sex (a PET in SUVbw needs no "
                "dose or times); `petct biomarkers` reads SUV-based values without them"
            )
    before = scan_biomarkers(baseline, peak_definition)
    after = scan_biomarkers(followup, peak_definition)
    registration = register_rigid(followup.suv, baseline.suv)
    quality = registration_quality(followup.suv, baseline.suv, registration)
    registered = (
        quality["correlation"] >= MIN_REGISTRATION_CORRELATION and quality["overlap"] >= MIN_REGISTRATION_OVERLAP
    )
    mask_image = baseline.suv.with_array(baseline.lesions.astype(np.uint8), units="label", modality="SEG")
    warped = registration.warp(mask_image, followup.suv, order=0)
    new = new_lesions(followup.lesions, warped.array > 0, followup.suv.spacing, tolerance_mm)
    liver: LiverReference | None = None
    if baseline.liver is not None and baseline.liver.any() and baseline.sul is not None:
        liver = liver_reference(baseline.sul.array, baseline.liver, baseline.suv.spacing, baseline.lesions)
    category = percist(before.sul_peak, after.sul_peak, bool(new), liver)
    if not registered:  # new lesions cannot be told from misplaced old ones: no category
        category = dataclasses.replace(
            category,
            category=NOT_ASSESSABLE,
            reason=(
                f"registration failed (log-uptake correlation {quality['correlation']:.2f} < "
                f"{MIN_REGISTRATION_CORRELATION}, or overlap {quality['overlap']:.2f} < {MIN_REGISTRATION_OVERLAP}): "
                "new lesions cannot be told from misplaced baseline lesions; check that both scans are of this "
                "patient and cover the same region"
            ),
        )
    result = ResponseAssessment(
        assessable=registered,
        percist=category,
        liver=liver,
        baseline=before,
        followup=after,
        new_lesion_labels=new if registered else [],
        tolerance_mm=tolerance_mm,
        registration=registration,
        registration_quality=quality,
        sources=(str(baseline.folder), str(followup.folder)),
    )
    return result, warped


def response_title(result: ResponseAssessment) -> str:
    """The response MIP's heading: the PERCIST category with the SULpeak change that decided it and the new lesions
    counted, or "not assessable" with the reason (a failed registration gives no category)."""
    c = result.percist
    if not result.assessable:
        return f"PERCIST: not assessable — {c.reason}"
    parts = [f"PERCIST: {c.category}"]
    if c.baseline_sul_peak is not None and c.followup_sul_peak is not None:
        change = "" if c.change_percent is None else f" ({c.change_percent:+.0f} %)"
        parts.append(f"SULpeak {c.baseline_sul_peak:.2f} → {c.followup_sul_peak:.2f}{change}")
    count = result.new_lesion_count or 0
    parts.append(f"{count} new lesion{'s' if count != 1 else ''}")
    return " · ".join(parts)


def _panel_title(name: str, scan: Scan) -> str:
    return f"{name} {scan.acquired:%Y-%m-%d}" if scan.acquired is not None else name


def write_response(
    result: ResponseAssessment, warped: Image, baseline: Scan, followup: Scan, out_dir: str | Path
) -> dict[str, Path]:
    """Write what ``petct response`` writes into ``out_dir`` (replaced atomically): response.json, the baseline
    lesions on the follow-up grid and the two scans' maximum-intensity projections (mip.png)."""
    from breastseg.io import write_image
    from breastseg.io.atomic import atomic_path, write_json
    from breastseg.workflows.petct.figures import MipPanel, mip_figure

    out_dir = Path(out_dir)
    with atomic_path(out_dir, producer="petct response") as tmp:
        tmp.mkdir(parents=True)
        write_image(warped, tmp / "baseline_lesions_on_followup.nii.gz")
        new = frozenset(result.new_lesion_labels)
        panels = [
            MipPanel(_panel_title("baseline", baseline), baseline.suv, baseline.lesions, result.baseline.lesions),
            MipPanel(_panel_title("follow-up", followup), followup.suv, followup.lesions, result.followup.lesions, new),
        ]
        mip_figure(panels, tmp / "mip.png", title=response_title(result))
        write_json(result.to_json(), tmp / "response.json")
    return {name: out_dir / name for name in ("response.json", "baseline_lesions_on_followup.nii.gz", "mip.png")}


def measure_response(
    baseline_dir: str | Path,
    followup_dir: str | Path,
    out_dir: str | Path,
    *,
    mask_name: str = "lesions.nii.gz",
    peak_definition: PeakDefinition | str = PeakDefinition.STUDY,
    tolerance_mm: float = 10.0,
    check_pairing: bool = True,
    progress: Callable[[str], None] | None = None,
    pet_units: str | None = None,
) -> ResponseAssessment:
    """``petct response``: read both scan folders (:func:`read_scan`), assess the response
    (:func:`assess_response`) and write ``out_dir`` (:func:`write_response`); returns the assessment
    (``assessable`` False, with its reason, after a failed registration — never a category then). The command,
    the batch runner and the Python API call this."""
    say = progress or (lambda _step: None)
    say("reading the scans")
    baseline = read_scan(baseline_dir, mask_name, pet_units)
    followup = read_scan(followup_dir, mask_name, pet_units)
    say("registering and measuring")
    result, warped = assess_response(baseline, followup, peak_definition, tolerance_mm, check_pairing=check_pairing)
    write_response(result, warped, baseline, followup, out_dir)
    return result
