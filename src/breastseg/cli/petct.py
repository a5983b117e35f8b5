"""``breastseg petct``: whole-body FDG PET/CT — biomarkers now; segmentation networks, response and cohort
analysis arrive with the rest of issue #8."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

_existing = click.Path(exists=True, path_type=Path)


@click.group()
def petct() -> None:
    """Metastatic lesions, SUV biomarkers and treatment response on whole-body FDG PET/CT.

    \b
    Available: biomarkers (SULpeak, SUVmax, SUVmean, MTV, TLG, PET Bone/Liver Index from a lesion mask).
    Arriving with issue #8: train, predict, response (PERCIST), cohort (ROC, DeLong).
    """


@petct.command("biomarkers")
@click.option("--pet", "pet_path", required=True, type=_existing, help="PET: DICOM folder, or NIfTI/NRRD/MHA.")
@click.option(
    "--pet-info",
    "pet_info",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON with weight, height, sex, injected dose and times, for a PET without DICOM headers.",
)
@click.option("--mask", "mask_path", required=True, type=_existing, help="Lesion mask (any grid; >0 = lesion).")
@click.option("--ct", "ct_path", type=_existing, default=None, help="CT, for --bone-from-ct.")
@click.option("--bone-mask", type=_existing, default=None, help="Bone mask, for the PET Bone Index.")
@click.option(
    "--bone-from-ct",
    is_flag=True,
    help="No bone mask: threshold the CT (>= 200 HU, marrow filled; coarse, documented fallback).",
)
@click.option("--liver-mask", type=_existing, default=None, help="Liver mask, for the PET Liver Index.")
@click.option(
    "--peak",
    "peak_definition",
    type=click.Choice(["study", "ibsi-global", "ibsi-local"]),
    default="study",
    show_default=True,
    help="SULpeak definition: the study's (1.2 cm sphere, best centre among lesion voxels) or IBSI's 1 cm3 "
    "global / local (at the hottest voxel) peak.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def biomarkers_cmd(
    pet_path: Path,
    pet_info: Path | None,
    mask_path: Path,
    ct_path: Path | None,
    bone_mask: Path | None,
    bone_from_ct: bool,
    liver_mask: Path | None,
    peak_definition: str,
    out_dir: Path,
) -> None:
    """PET biomarkers of a lesion mask: biomarkers.json and lesions.csv in OUT.

    SULpeak (the study's definition by default; the JSON says which), SUVmax, SUVmean, MTV (ml), TLG
    (sum of lesion MTV x SUVmean), lesion count, and with bone / liver masks the PET Bone and Liver Indices.
    Masks on another grid are resampled onto the PET's (nearest neighbour). Missing weight, height, sex, dose or
    times are refused by name, never guessed.

    \b
    Example:
      breastseg petct biomarkers --pet pet_dicom/ --mask lesions.nii.gz --liver-mask liver.nii.gz --out bio/
    """
    from breastseg.io import read_image
    from breastseg.workflows.petct.biomarkers import compute_biomarkers
    from breastseg.workflows.petct.readout import bone_from_ct as ct_bone
    from breastseg.workflows.petct.readout import load_pet_suv, read_mask_on, write_biomarkers

    if bone_mask is not None and bone_from_ct:
        raise click.UsageError("give --bone-mask or --bone-from-ct, not both")
    if bone_from_ct and ct_path is None:
        raise click.UsageError("--bone-from-ct needs --ct")
    suv, sul = load_pet_suv(pet_path, pet_info)
    lesions = read_mask_on(mask_path, suv, "lesion mask")
    bone = None
    bone_source = None
    if bone_mask is not None:
        bone, bone_source = read_mask_on(bone_mask, suv, "bone mask"), str(bone_mask)
    elif bone_from_ct and ct_path is not None:
        bone, bone_source = ct_bone(read_image(ct_path, modality="CT"), suv), f"CT threshold ({ct_path})"
    liver = read_mask_on(liver_mask, suv, "liver mask") if liver_mask is not None else None
    result = compute_biomarkers(
        suv.array,
        sul.array,
        lesions,
        suv.spacing,
        bone,
        liver,
        peak_definition,  # type: ignore[arg-type]
    )
    provenance = {
        "pet": str(pet_path),
        "mask": str(mask_path),
        "bone_mask": bone_source,
        "liver_mask": str(liver_mask) if liver_mask else None,
    }
    written = write_biomarkers(result, suv, out_dir, provenance)
    console = Console()
    peak = f"{result.sul_peak:.2f}" if result.sul_peak is not None else "—"
    console.print(
        f"{result.lesion_count} lesions, SULpeak {peak} ({peak_definition}), MTV {result.mtv_ml:.1f} ml, "
        f"TLG {result.tlg:.1f}"
    )
    console.print(f"written {written['json']} and {written['csv']}")
