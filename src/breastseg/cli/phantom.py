"""``breastseg phantom``: generate synthetic cases with known truth."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from breastseg.errors import InputError
from breastseg.phantoms.base import write_phantom
from breastseg.phantoms.specimen import (
    LAMELLA_PET_MEDIAN_MM,
    SpecimenPhantomConfig,
    make_lamellae,
    make_specimen_phantom,
    write_lamellae,
    write_specimen_dicom,
)
from breastseg.progress import status


@click.group()
def phantom() -> None:
    """Synthetic cases with known truth (deterministic by seed), for demos, tests and docs."""


_phantom_version_option = click.option(
    "--phantom-version",
    type=click.Choice(["1", "2", "3"]),
    default="1",
    show_default=True,
    help="Generator: 1 the original; 2 adds benign tissue a threshold cannot tell from tumour (fibroadenoma-like "
    "nodules, an inflamed biopsy track, fat necrosis, dense bands) and a heterogeneous tumour (necrotic core, "
    "spicules, a DCIS-like extension); 3 is 2 with a wider, hotter biopsy track that a threshold follows to the "
    "surface. A cohort of version 2 or 3 bread-loafs its lamellae.",
)


_placement_option = click.option(
    "--placement",
    type=click.Choice(["clipped", "translated"]),
    default="clipped",
    show_default=True,
    help="How a tumour with a negative margin meets it: clipped flat at the margin (a broad face parallel to the "
    "surface, as against a fascial plane) or translated inward until its nearest point lies there (a convex "
    "approach, as when the surgeon leaves a rim of tissue).",
)


@phantom.command("specimen")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into (created if missing).",
)
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed gives the same phantom.")
@click.option(
    "--margin-mm",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Distance the tumour stays inside the specimen surface, mm. [default: 2.0]",
)
@click.option("--positive", is_flag=True, help="Make the tumour touch the surface (positive margin).")
@click.option(
    "--tumour-diameter-mm",
    type=click.FloatRange(min=1.0),
    default=12.0,
    show_default=True,
    help="Nominal tumour diameter, mm.",
)
@click.option(
    "--ct-spacing-mm",
    type=click.FloatRange(min=0.05),
    default=0.2,
    show_default=True,
    help="Isotropic micro-CT voxel size, mm (the study's scanners: 0.1).",
)
@click.option(
    "--pet-spacing-mm",
    type=click.FloatRange(min=0.1),
    default=0.4,
    show_default=True,
    help="Isotropic micro-PET voxel size, mm.",
)
@click.option(
    "--pet-units",
    type=click.Choice(["BQML", "SUVbw"]),
    default="BQML",
    show_default=True,
    help="Store the PET as activity concentration (Bq/ml, as scanners do) or as SUVbw.",
)
@click.option("--no-wire", is_flag=True, help="Leave out the metal localisation wire.")
@click.option("--no-container", is_flag=True, help="Leave out the plastic bed under the specimen.")
@click.option(
    "--lamellae",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also cut this many 2D training lamellae (label map: 0 benign, 1 malignant, 2 unknown).",
)
@click.option(
    "--unknown-band-mm",
    type=click.FloatRange(min=0.0),
    default=0.3,
    show_default=True,
    help="Lamellae: the band on each side of the tumour boundary labelled unknown (co-registration uncertainty; "
    "0: none).",
)
@click.option(
    "--bread-loaf",
    is_flag=True,
    help="Lamellae: cut them every 2.5 mm across the whole specimen, as a pathologist's full bread-loafing does "
    "(tumour-free and peripheral slices too), instead of --lamellae slices through the tumour.",
)
@click.option(
    "--lamella-pet-median-mm",
    type=click.FloatRange(min=0.0),
    default=LAMELLA_PET_MEDIAN_MM,
    show_default=True,
    help="Lamellae: the PET median filter (mm, 3D, before the slices are cut), the specimen pipeline's by default "
    "so a network trains on the PET it sees at inference; 0 for none (lamellae written before it).",
)
@_phantom_version_option
@_placement_option
@click.option("--dicom", is_flag=True, help="Also write the CT and PET as DICOM series (dicom/ct, dicom/pet).")
def specimen(
    out_dir: Path,
    seed: int,
    margin_mm: float | None,
    positive: bool,
    tumour_diameter_mm: float,
    ct_spacing_mm: float,
    pet_spacing_mm: float,
    pet_units: str,
    no_wire: bool,
    no_container: bool,
    lamellae: int,
    unknown_band_mm: float,
    bread_loaf: bool,
    lamella_pet_median_mm: float,
    phantom_version: str,
    placement: str,
    dicom: bool,
) -> None:
    """A micro-PET-CT lumpectomy specimen with a tumour at a known margin.

    Writes ct.nii.gz (HU), pet.nii.gz (Bq/ml or SUVbw), tumour.nii.gz, specimen.nii.gz, labels.nii.gz
    (0 air, 1 fat, 2 fibroglandular, 3 tumour, 4 container, 5 wire) and truth.json (margin in mm, status,
    volumes in ml, and the patient/injection data needed for SUV).

    \b
    Examples:
      breastseg phantom specimen --out case0 --seed 0 --margin-mm 1.5
      breastseg phantom specimen --out case1 --seed 1 --positive --lamellae 3 --dicom
    """
    if positive and margin_mm is not None:
        raise InputError("give either --margin-mm or --positive, not both")
    if bread_loaf and lamellae:
        raise InputError("give either --lamellae N (slices through the tumour) or --bread-loaf (the whole specimen)")
    cfg = SpecimenPhantomConfig(
        seed=seed,
        margin_mm=None if positive else (2.0 if margin_mm is None else margin_mm),
        tumour_diameter_mm=tumour_diameter_mm,
        ct_spacing_mm=ct_spacing_mm,
        pet_spacing_mm=pet_spacing_mm,
        pet_units="BQML" if pet_units == "BQML" else "SUVbw",
        wire=not no_wire,
        container=not no_container,
        version=int(phantom_version),
        placement="translated" if placement == "translated" else "clipped",
    )
    with status("generating the specimen phantom…"):
        ph = make_specimen_phantom(cfg)
    with status(f"writing to {out_dir}…"):
        written = write_phantom(ph, out_dir)
        if dicom:
            for name, path in write_specimen_dicom(ph, out_dir / "dicom").items():
                written[f"dicom {name}"] = path
        if lamellae or bread_loaf:
            lams = make_lamellae(
                ph,
                n=lamellae,
                unknown_band_mm=unknown_band_mm,
                span="specimen" if bread_loaf else "tumour",
                pet_median_mm=lamella_pet_median_mm,
            )
            written["lamellae"] = write_lamellae(lams, out_dir / "lamellae", patient_id=f"phantom{seed:03d}")

    truth = ph.truth
    table = Table(title=f"specimen phantom, seed {seed}", show_header=False)
    table.add_row("margin", f"{truth['margin_mm']:.2f} mm ({truth['margin_status']})")
    table.add_row("tumour volume", f"{truth['tumour_volume_ml']:.2f} ml")
    table.add_row("specimen volume", f"{truth['specimen_volume_ml']:.2f} ml")
    for name, ml in truth.get("confounder_volumes_ml", {}).items():
        table.add_row(name.replace("_", " "), f"{1000 * ml:.1f} mm³" if ml else "—")
    ct = ph.images["ct"]
    table.add_row("CT grid", f"{'×'.join(map(str, ct.shape))} voxels at {ct.spacing[0]:g} mm")
    pet = ph.images["pet"]
    table.add_row("PET grid", f"{'×'.join(map(str, pet.shape))} voxels at {pet.spacing[0]:g} mm, {pet.units}")
    for name, path in written.items():
        table.add_row(name, str(path))
    Console().print(table)


@phantom.command("specimen-cohort")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Cohort folder to write (lamellae/, specimens/, cohort.json).",
)
@click.option(
    "--nst", "nst", type=click.IntRange(min=1), default=15, show_default=True, help="NST patients (lamellae)."
)
@click.option("--ilc", type=click.IntRange(min=0), default=0, show_default=True, help="ILC patients (lamellae).")
@click.option("--dcis", type=click.IntRange(min=0), default=0, show_default=True, help="DCIS patients (lamellae).")
@click.option("--lamellae", type=click.IntRange(min=1), default=3, show_default=True, help="Slices per patient.")
@click.option(
    "--specimens",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="3D specimens with a known margin (40 % drawn positive, the rest 0.5–5 mm; a --shared one keeps its "
    "lamella patient's margin, so the printed count of positives is what the truths hold).",
)
@click.option(
    "--shared",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How many specimens belong to lamella patients (exercises the leakage guard, as in the study).",
)
@click.option("--ct-spacing-mm", type=click.FloatRange(min=0.05), default=0.3, show_default=True)
@click.option("--pet-spacing-mm", type=click.FloatRange(min=0.1), default=0.6, show_default=True)
@click.option("--seed", default=0, show_default=True)
@_phantom_version_option
@_placement_option
def specimen_cohort(
    out_dir: Path,
    nst: int,
    ilc: int,
    dcis: int,
    lamellae: int,
    specimens: int,
    shared: int,
    ct_spacing_mm: float,
    pet_spacing_mm: float,
    seed: int,
    phantom_version: str,
    placement: str,
) -> None:
    """A synthetic cohort in the layout `breastseg specimen study` reads (2D lamellae + 3D specimens).

    \b
    Example:
      breastseg phantom specimen-cohort --out cohort --nst 15 --specimens 20
    """
    from breastseg.io.tables import read_csv_rows
    from breastseg.phantoms.specimen_cohort import CohortConfig, specimen_margins, write_cohort

    margins = specimen_margins(specimens)
    cfg = CohortConfig(
        nst_patients=nst,
        ilc_patients=ilc,
        dcis_patients=dcis,
        lamellae_per_patient=lamellae,
        specimen_margins_mm=margins,
        shared_specimens=min(shared, specimens),
        ct_spacing_mm=ct_spacing_mm,
        pet_spacing_mm=pet_spacing_mm,
        seed=seed,
        phantom_version=int(phantom_version),
        placement="translated" if placement == "translated" else "clipped",
    )
    with status("generating…") as step:
        written = write_cohort(out_dir, cfg, progress=step)
    # what the phantoms' truths say, not what was asked for: specimens of lamella patients keep that patient's margin
    rows = read_csv_rows(written["specimens"], ("margin_status",), "specimen manifest") if specimens else []
    n_pos = sum(r["margin_status"] == "positive" for r in rows)
    table = Table(title="specimen cohort", show_header=False)
    table.add_row("lamella patients", f"{nst} NST, {ilc} ILC, {dcis} DCIS × {lamellae} slices")
    table.add_row("3D specimens", f"{specimens} ({n_pos} positive, {min(shared, specimens)} from lamella patients)")
    for name, path in written.items():
        table.add_row(name, str(path))
    Console().print(table)


@phantom.command("petct")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed gives the same patient.")
@click.option(
    "--response",
    type=click.Choice(["PMR", "SMD", "PMD", "CMR"]),
    default="PMR",
    show_default=True,
    help="The follow-up's designed PERCIST response.",
)
@click.option("--lesions", type=click.IntRange(1, 20), default=6, show_default=True, help="Baseline metastases.")
@click.option("--ct-spacing-mm", type=click.FloatRange(min=0.5), default=2.0, show_default=True, help="CT voxel size.")
@click.option(
    "--pet-spacing-mm", type=click.FloatRange(min=1.0), default=4.0, show_default=True, help="PET voxel size."
)
@click.option("--dicom", is_flag=True, help="Also write each scan's CT and PET as DICOM series (dicom/ct, dicom/pet).")
def petct_phantom(
    out_dir: Path, seed: int, response: str, lesions: int, ct_spacing_mm: float, pet_spacing_mm: float, dicom: bool
) -> None:
    """A whole-body FDG PET/CT patient with metastases, at baseline and follow-up.

    Writes OUT/baseline and OUT/followup, each with ct.nii.gz (HU), pet.nii.gz (Bq/ml), lesions.nii.gz
    (label k = lesion k), liver.nii.gz, bone.nii.gz (PET grid) and truth.json (lesion sites, SUVs and
    volumes; the patient and injection data for SUV; the designed response; the follow-up-to-baseline rigid
    transform).

    \b
    Example:
      breastseg phantom petct --out patient0 --seed 0 --response PMR
      breastseg petct biomarkers --pet patient0/baseline/pet.nii.gz --pet-info patient0/baseline/truth.json \\
          --mask patient0/baseline/lesions.nii.gz --liver-mask patient0/baseline/liver.nii.gz --out bio0
    """
    from breastseg.phantoms.base import write_pet_ct_dicom
    from breastseg.phantoms.wholebody import Response, WholeBodyPhantomConfig, make_wholebody_pair

    cfg = WholeBodyPhantomConfig(
        seed=seed,
        response=Response(response),
        lesions=lesions,
        ct_spacing_mm=(ct_spacing_mm,) * 3,
        pet_spacing_mm=(pet_spacing_mm,) * 3,
    )
    with status("generating the whole-body phantom…"):
        pair = make_wholebody_pair(cfg)
    table = Table(title=f"whole-body PET/CT phantom, seed {seed}, response {response}", show_header=False)
    for timepoint, ph in pair.items():
        with status(f"writing {timepoint}…"):
            write_phantom(ph, out_dir / timepoint)
            if dicom:
                write_pet_ct_dicom(ph, out_dir / timepoint / "dicom", "Phantom^WholeBody", "CT phantom", "PET phantom")
        lesions_found = ph.truth["lesions"]
        sites = ", ".join(f"{les['site']} ({les['volume_ml']:.1f} ml, SUV {les['suvbw']:.1f})" for les in lesions_found)
        table.add_row(timepoint, f"{ph.truth['lesion_count']} lesions: {sites or 'none'}")
    table.add_row("written", str(out_dir))
    Console().print(table)


@phantom.command("dce")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed gives the same breast.")
@click.option("--phases", type=click.IntRange(1, 10), default=5, show_default=True, help="Post-contrast phases.")
@click.option("--tumour-radius-mm", type=click.FloatRange(min=3.0), default=9.0, show_default=True)
@click.option("--benign-foci", type=click.IntRange(0, 10), default=2, show_default=True, help="Benign enhancing foci.")
@click.option(
    "--motion-mm",
    type=click.FloatRange(min=0.0),
    default=1.5,
    show_default=True,
    help="Motion per phase: up to this shift (mm) and rotation (degrees).",
)
def dce_phantom(
    out_dir: Path, seed: int, phases: int, tumour_radius_mm: float, benign_foci: int, motion_mm: float
) -> None:
    """A single-breast DCE-MRI exam with a wash-out tumour, benign persistent foci and motion between phases.

    Writes OUT/t1.nii.gz (pre-contrast), t1c_1 … t1c_N.nii.gz (post-contrast, 90 s apart), times.json (the
    post-contrast acquisition times), tumour.nii.gz, benign.nii.gz and breast.nii.gz (on the first T1c's grid)
    and truth.json (kinetics, tumour volume, motion) — an exam folder `breastseg mri` reads.

    \b
    Example:
      breastseg phantom dce --out exam0 --seed 0
      breastseg mri segment --exam exam0 --model mri.pt --out seg0
    """
    from breastseg.io.atomic import write_json
    from breastseg.phantoms.dce import DcePhantomConfig, make_dce_phantom

    times = tuple(90.0 * k for k in range(1, phases + 1))
    cfg = DcePhantomConfig(
        seed=seed,
        post_times_s=times,
        tumour_radius_mm=tumour_radius_mm,
        benign_foci=benign_foci,
        motion_mm=motion_mm,
        motion_deg=motion_mm,
    )
    ph = make_dce_phantom(cfg)
    write_phantom(ph, out_dir)
    write_json({"post_times_s": list(times)}, out_dir / "times.json")
    click.echo(
        f"DCE phantom seed {seed}: {phases} post-contrast phases, tumour {ph.truth['tumour_volume_ml']:.2f} ml, "
        f"{benign_foci} benign foci → {out_dir}"
    )
