"""``breastseg petct``: whole-body FDG PET/CT — lesion networks (train, predict), biomarkers, response, cohort
analysis, evaluation and the nnU-Net bridge."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click
import numpy as np
from rich.console import Console

from breastseg.cli.options import (
    device_option,
    dicom_out_option,
    existing_folder,
    existing_path,
    peak_option,
    pet_units_option,
)
from breastseg.progress import status

_mask_name_option = click.option(
    "--mask-name", default="lesions.nii.gz", show_default=True, help="Lesion mask file in each folder."
)
_patients_option = click.option(
    "--patients",
    "patients_csv",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="CSV: patient_id, baseline[, followup][, site] scan folders (relative to the CSV); or an autoPET tree "
    "(<patient>/<study>/ with SUV.nii.gz, CTres.nii.gz, SEG.nii.gz: a second study is the follow-up).",
)

_kind_option = click.option(
    "--kind",
    type=click.Choice(["baseline", "followup"]),
    default="baseline",
    show_default=True,
    help="baseline: PET + CT (2 channels); followup: + the baseline PET and lesion mask registered onto the "
    "follow-up PET (4 channels).",
)


@click.group()
def petct() -> None:
    """Metastatic lesions, SUV biomarkers and treatment response on whole-body FDG PET/CT.

    \b
    train / predict: the baseline (PET + CT) and follow-up (+ registered baseline) lesion networks;
    biomarkers: SULpeak, SUVmax, SUVmean, MTV, TLG, PET Bone/Liver Index from a lesion mask;
    response: delta-% and PERCIST 1.0 between a baseline and a follow-up scan;
    cohort: ROC, AUC, Youden, DeLong, agreement with manual; evaluate: Dice, detection, FP/FN volumes;
    nnunet-export / nnunet-import: train with nnU-Net itself, keep these read-outs.
    """


@petct.command("biomarkers")
@click.option("--pet", "pet_path", required=True, type=existing_path, help="PET: DICOM folder, or NIfTI/NRRD/MHA.")
@click.option(
    "--pet-info",
    "pet_info",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON with weight, height, sex, injected dose and times, for a PET without DICOM headers.",
)
@pet_units_option
@click.option("--mask", "mask_path", required=True, type=existing_path, help="Lesion mask (any grid; >0 = lesion).")
@click.option("--ct", "ct_path", type=existing_path, default=None, help="CT, for --bone-from-ct.")
@click.option("--bone-mask", type=existing_path, default=None, help="Bone mask, for the PET Bone Index.")
@click.option(
    "--bone-from-ct",
    is_flag=True,
    help="No bone mask: threshold the CT (>= 200 HU, marrow filled; coarse, documented fallback).",
)
@click.option("--liver-mask", type=existing_path, default=None, help="Liver mask, for the PET Liver Index.")
@peak_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@dicom_out_option(
    "seg.dcm (one segment per lesion, on the PET series) and sr.dcm (TID 1500 PET measurement "
    "report: SULpeak, SUVmax, MTV, TLG per lesion and per scan). Needs a DICOM PET."
)
def biomarkers_cmd(
    pet_path: Path,
    pet_info: Path | None,
    pet_units: str | None,
    mask_path: Path,
    ct_path: Path | None,
    bone_mask: Path | None,
    bone_from_ct: bool,
    liver_mask: Path | None,
    peak_definition: str,
    out_dir: Path,
    dicom_out: Path | None,
) -> None:
    """PET biomarkers of a lesion mask: biomarkers.json, lesions.csv and mip.png in OUT.

    SULpeak (the study's definition by default; the JSON says which), SUVmax, SUVmean, MTV (ml), TLG
    (sum of lesion MTV x SUVmean), lesion count, and with bone / liver masks the PET Bone and Liver Indices.
    Masks on another grid are resampled onto the PET's (nearest neighbour). A Bq/ml PET without weight, dose or
    times is refused by name, never guessed; a PET already in SUVbw (--pet-units SUVbw) needs no patient data, and
    without height and sex the SUL read-outs are left out (SUVpeak on SUVbw is given instead, labelled so).

    \b
    Example:
      breastseg petct biomarkers --pet pet_dicom/ --mask lesions.nii.gz --liver-mask liver.nii.gz --out bio/
    """
    from breastseg.io import image_format
    from breastseg.workflows.petct.scan import measure_scan

    if bone_mask is not None and bone_from_ct:
        raise click.UsageError("give --bone-mask or --bone-from-ct, not both")
    if bone_from_ct and ct_path is None:
        raise click.UsageError("--bone-from-ct needs --ct")
    if dicom_out is not None and image_format(pet_path) != "dicom":
        raise click.UsageError(f"--dicom-out needs the PET as DICOM (the series the SEG references); got {pet_path}")
    measured = measure_scan(
        pet_path,
        mask_path,
        out_dir,
        pet_info=pet_info,
        bone_mask=bone_mask,
        liver_mask=liver_mask,
        ct=ct_path,
        bone_from_ct_threshold=bone_from_ct,
        peak_definition=peak_definition,
        dicom_out=dicom_out,
        pet_units=pet_units,
    )
    result, written = measured.biomarkers, measured.written
    console = Console()
    if result.sul_peak is not None:
        peak = f"SULpeak {result.sul_peak:.2f}"
    elif result.suv_peak is not None:
        peak = f"SUVpeak {result.suv_peak:.2f} on SUVbw (no SUL: needs the patient's weight, height and sex)"
    else:
        peak = "no peak"
    console.print(
        f"{result.lesion_count} lesions, {peak} ({peak_definition}), MTV {result.mtv_ml:.1f} ml, TLG {result.tlg:.1f}"
    )
    console.print(f"written {written['json']} and {written['csv']}")
    if dicom_out is not None:
        console.print(f"written DICOM SEG + SR in {dicom_out}")


@petct.command("response")
@click.option(
    "--baseline",
    "baseline_dir",
    required=True,
    type=existing_folder,
    help="Baseline scan folder (pet.nii.gz or pet/ DICOM, lesions.nii.gz, optional liver/bone.nii.gz).",
)
@click.option(
    "--followup", "followup_dir", required=True, type=existing_folder, help="Follow-up scan folder, same layout."
)
@_mask_name_option
@pet_units_option
@peak_option
@click.option(
    "--new-lesion-tolerance-mm",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="A follow-up lesion farther than this from every (registered) baseline lesion is new.",
)
@click.option(
    "--allow-pair-mismatch",
    is_flag=True,
    help="Compare scans that name different patients (DICOM PatientID, sex) or whose follow-up is not later than "
    "the baseline (refused by default).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def response_cmd(
    baseline_dir: Path,
    followup_dir: Path,
    mask_name: str,
    pet_units: str | None,
    peak_definition: str,
    new_lesion_tolerance_mm: float,
    allow_pair_mismatch: bool,
    out_dir: Path,
) -> None:
    """Treatment response between two scans: delta-% per biomarker and the PERCIST 1.0 category.

    The baseline PET is registered rigidly onto the follow-up (mutual information) to find new lesions;
    PERCIST uses the scans' SULpeak (30 % and 0.8 SUL rules, new lesions, complete response against the
    liver background when a baseline liver mask is there). A registration that fails its check (the scans'
    uptake must correlate once registered) gives "not assessable", never a category. Writes OUT/response.json and
    OUT/baseline_lesions_on_followup.nii.gz (the baseline mask on the follow-up grid).

    \b
    Example:
      breastseg phantom petct --out patient0 --response PMR
      breastseg petct response --baseline patient0/baseline --followup patient0/followup --out resp0
    """
    from breastseg.workflows.petct.longitudinal import measure_response

    with status("reading the scans…") as step:
        result = measure_response(
            baseline_dir,
            followup_dir,
            out_dir,
            mask_name=mask_name,
            peak_definition=peak_definition,
            tolerance_mm=new_lesion_tolerance_mm,
            check_pairing=not allow_pair_mismatch,
            progress=lambda text: step(f"{text}…"),
            pet_units=pet_units,
        )
    p = result.percist
    if not result.assessable:
        Console().print(f"PERCIST: [bold red]NOT ASSESSABLE[/bold red] ({p.reason})")
        Console().print(f"written {out_dir / 'response.json'} (look at mip.png)")
        return
    change = result.change_percent.get("sul_peak")
    change_text = f"{change:+.0f} %" if change is not None else "n/a"
    Console().print(
        f"PERCIST: [bold]{p.category}[/bold] ({p.reason}); SULpeak change {change_text}; "
        f"new lesions {result.new_lesion_count}"
    )
    Console().print(f"written {out_dir / 'response.json'}")


@petct.command("cohort")
@click.option(
    "--table",
    "table_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV: patient_id, percist (reference CMR/PMR/SMD/PMD), delta_<biomarker> columns or response_json; "
    "optional <biomarker>_auto/_manual and _baseline/_followup.",
)
@click.option(
    "--biomarker",
    "biomarkers",
    multiple=True,
    help="Biomarker(s) to analyse (default: every delta_ column filled for all patients).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def cohort_cmd(table_path: Path, biomarkers: tuple[str, ...], out_dir: Path) -> None:
    """Which biomarker change tells responders from non-responders, and do automatic biomarkers agree with manual?

    Per biomarker: ROC of the change against PERCIST responders (CMR + PMR), AUC with DeLong's 95 % CI, the
    Youden cut-off as a delta-%, sensitivity, specificity, Mann-Whitney U; DeLong between biomarkers. With
    _auto/_manual columns: Lin's CCC, Spearman, Wilcoxon and Bland-Altman. Writes OUT/cohort.json, roc.png,
    agreement_<biomarker>.png and trajectories_<biomarker>.png.

    \b
    Example (the study's four biomarkers from `petct response` outputs):
      breastseg petct cohort --table cohort.csv --biomarker sul_peak --biomarker tlg --out cohort/
    """
    from breastseg.io.atomic import write_json
    from breastseg.workflows.petct.cohort import (
        agreement_analysis,
        biomarkers_with_changes,
        read_cohort,
        response_analysis,
    )
    from breastseg.workflows.petct.figures import agreement_figure, roc_figure, trajectories_figure
    from breastseg.workflows.petct.response import RESPONDERS

    rows = read_cohort(table_path)
    chosen = list(biomarkers) or biomarkers_with_changes(rows)
    missing = [b for b in chosen if any(r.get(f"delta_{b}") is None for r in rows)]
    if missing or not chosen:
        raise click.UsageError(f"no delta_ values for every patient: {missing or 'no biomarker columns'}")
    result = response_analysis(rows, chosen)
    agreement = agreement_analysis(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    roc_figure(result["biomarkers"], out_dir / "roc.png")
    for name, values in agreement.items():
        agreement_figure(values["values"]["auto"], values["values"]["manual"], name, out_dir / f"agreement_{name}.png")
    for name in chosen:
        if all(r.get(f"{name}_baseline") is not None and r.get(f"{name}_followup") is not None for r in rows):
            trajectories_figure(rows, name, RESPONDERS, out_dir / f"trajectories_{name}.png")
    write_json({"table": str(table_path), **result, "agreement": agreement}, out_dir / "cohort.json")
    console = Console()
    console.print(f"{result['patients']} patients: {result['responders']} responders, {result['non_responders']} not")
    for name, r in result["biomarkers"].items():
        lo, hi = r["auc_ci95"]
        console.print(
            f"delta {name}: AUC {r['auc']:.2f} ({lo:.2f}-{hi:.2f}), cut-off {r['youden_cutoff_delta_percent']:.0f} %, "
            f"sensitivity {r['sensitivity']:.2f}, specificity {r['specificity']:.2f}, "
            f"Mann-Whitney p {r['mann_whitney_p']:.3g}"
        )
    console.print(f"written {out_dir / 'cohort.json'}")


@petct.command("nnunet-export")
@_patients_option
@_kind_option
@_mask_name_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The dataset folder, e.g. $nnUNet_raw/Dataset501_PetctBaseline.",
)
@click.option(
    "--folds", type=click.IntRange(2), default=5, show_default=True, help="splits_final.json folds (as petct train)."
)
@click.option("--seed", default=0, show_default=True, help="Fold seed (petct train's: the same held-out patients).")
@click.option(
    "--channel-order",
    type=click.Choice(["autopet", "pet-first"]),
    default="autopet",
    show_default=True,
    help="autopet: _0000 CT, _0001 PET (autoPET's nnU-Net datasets, so their models run on the export); "
    "pet-first: _0000 PET, _0001 CT, as earlier breastseg versions exported.",
)
@pet_units_option
def nnunet_export_cmd(
    patients_csv: Path,
    kind: str,
    mask_name: str,
    out_dir: Path,
    folds: int,
    seed: int,
    channel_order: str,
    pet_units: str | None,
) -> None:
    """Write scan folders as an nnU-Net v2 raw dataset (channels _0000.._0003 on the PET grid; CT first).

    PET channels are SUVbw clipped to [0, 5] and declared "noNorm", CT is declared "CT", so nnU-Net normalises
    each as intended; dataset.json records each case's patient, and splits_final.json holds the folds
    `petct train` uses with the same --folds and --seed (patients grouped, balanced by site; copy it to
    nnUNet_preprocessed/<dataset>/ before training).

    \b
    Example:
      breastseg petct nnunet-export --patients patients.csv --kind followup --out $nnUNet_raw/Dataset502_PetctFollowup
      nnUNetv2_plan_and_preprocess -d 502 && nnUNetv2_train 502 3d_fullres 0 ...
      breastseg petct nnunet-import --predictions preds/ --dataset $nnUNet_raw/Dataset502_PetctFollowup
    """
    from breastseg.workflows.petct.longitudinal import read_patients
    from breastseg.workflows.petct.nnunet import export_dataset

    patients = read_patients(patients_csv)
    with status(f"exporting {len(patients)} patients…"):
        root = export_dataset(patients, out_dir, kind, mask_name, folds, seed, channel_order, pet_units)
    Console().print(f"written {root} ({len(patients)} cases, {kind})")


@petct.command("nnunet-import")
@click.option("--predictions", required=True, type=existing_folder, help="nnU-Net's output folder (<case>.nii.gz).")
@click.option("--dataset", required=True, type=existing_folder, help="The dataset folder `petct nnunet-export` wrote.")
@click.option("--name", default="lesions_nnunet.nii.gz", show_default=True, help="File name in each scan folder.")
def nnunet_import_cmd(predictions: Path, dataset: Path, name: str) -> None:
    """Copy nnU-Net predictions into their scan folders, checked against each scan's PET grid.

    Then: breastseg petct response --baseline B --followup F --mask-name lesions_nnunet.nii.gz --out R
    """
    from breastseg.workflows.petct.nnunet import import_predictions

    written = import_predictions(predictions, dataset, name)
    Console().print(f"{len(written)} predictions imported as {name}")


@petct.command("evaluate")
@_patients_option
@click.option(
    "--timepoint",
    type=click.Choice(["baseline", "followup", "both"]),
    default="both",
    show_default=True,
    help="Which scans to score.",
)
@click.option(
    "--pred-name",
    "pred_names",
    multiple=True,
    required=True,
    help="Predicted mask file in each scan folder; two or more are compared (Wilcoxon on per-scan Dice).",
)
@click.option("--ref-name", default="lesions.nii.gz", show_default=True, help="Reference mask file.")
@click.option(
    "--pred-dir",
    type=existing_folder,
    default=None,
    help="Read the predictions from a `petct predict --out` folder (PRED_DIR/<patient>/<timepoint>/<pred-name>).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def evaluate_cmd(
    patients_csv: Path,
    timepoint: str,
    pred_names: tuple[str, ...],
    ref_name: str,
    pred_dir: Path | None,
    out_dir: Path,
) -> None:
    """Score lesion segmentations as the study: mean and global Dice, lesion recall/precision, FP/FN volumes.

    Per prediction: scans_<name>.csv (one row per scan) and its summary in evaluation.json; with several
    predictions, paired Wilcoxon tests of per-scan Dice. Scans whose reference has no lesion count by their
    false-positive volume only.

    \b
    Example:
      breastseg petct evaluate --patients patients.csv --pred-name lesions_nnunet.nii.gz --out eval/
    """

    from breastseg.workflows.petct.evaluate import MAX_BODY_FRACTION, evaluate_patients
    from breastseg.workflows.petct.longitudinal import read_patients

    patients = read_patients(patients_csv)
    evaluation = evaluate_patients(patients, pred_names, out_dir, ref_name, timepoint, pred_dir)
    console = Console()
    for name, s in evaluation.summaries.items():
        mean = f"{s.mean_dice:.3f}" if s.mean_dice is not None else "—"
        pooled = f"{s.global_dice:.3f}" if s.global_dice is not None else "—"
        ratio = f"{s.median_volume_ratio:.2f}" if s.median_volume_ratio is not None else "—"
        console.print(
            f"{name}: {s.scans} scans, mean Dice {mean}, global Dice {pooled}, lesion recall "
            f"{s.lesion_recall}, precision {s.lesion_precision}; predicted/reference volume {ratio} (median), "
            f"{s.merged_components} components merging lesions"
        )
        if s.degenerate_scans:
            click.echo(
                f"breastseg: warning: {name} covers more than {100 * MAX_BODY_FRACTION:.0f} % of the body in "
                f"{len(s.degenerate_scans)} scans ({', '.join(s.degenerate_scans[:5])}): a blob, not lesions — the "
                "detection counts above mean nothing for them",
                err=True,
            )
    console.print(f"written {out_dir / 'evaluation.json'}")


@petct.command("train")
@_patients_option
@_kind_option
@_mask_name_option
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Model .pt.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True, help="Patient-grouped CV folds.")
@click.option("--epochs", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--patch",
    "patch_size",
    type=click.IntRange(8),
    nargs=3,
    default=(96, 96, 96),
    show_default=True,
    help="Patch (and sliding-window) size z y x, voxels of the model grid.",
)
@click.option("--filters", type=click.IntRange(1), default=32, show_default=True, help="First-level channels.")
@click.option("--patches-per-scan", type=click.IntRange(1), default=8, show_default=True, help="Per epoch.")
@click.option("--batch-size", type=click.IntRange(1), default=2, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=3e-4, show_default=True)
@click.option("--precision", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save every epoch here; an interrupted run resumes from it.",
)
@pet_units_option
@device_option
def train_cmd(
    patients_csv: Path,
    kind: str,
    mask_name: str,
    out_path: Path,
    folds: int,
    epochs: int,
    patch_size: tuple[int, int, int],
    filters: int,
    patches_per_scan: int,
    batch_size: int,
    learning_rate: float,
    precision: str,
    seed: int,
    checkpoints: Path | None,
    pet_units: str | None,
    device: str,
) -> None:
    """Train the baseline or follow-up lesion network: nnU-Net's 3D U-Net (MONAI DynUNet), K-fold CV.

    One network per fold, each never seeing its fold's patients (grouped by patient_id, balanced by the
    optional site column); together they are the ensemble for new patients, and `petct predict` uses for a
    training patient only the members that did not train on it. Dice + cross-entropy, Adam, poly learning
    rate, rotation/scaling/elastic/mirror/gamma augmentation; preprocessing (spacing, CT normalisation)
    fitted on the training scans and stored in the model. The defaults are the real recipe (use a GPU);
    the example is a quick CPU try.

    \b
    Example:
      for i in 0 1 2 3 4 5; do breastseg phantom petct --out p$i --seed $i --pet-spacing-mm 8 --ct-spacing-mm 5; done
      breastseg petct train --patients patients.csv --out baseline.pt --folds 3 --epochs 5 --patch 32 32 32 --filters 8
      breastseg petct predict --model baseline.pt --patients patients.csv --timepoint followup
    """
    from breastseg.predict.device import Precision
    from breastseg.workflows.petct.inputs import Kind
    from breastseg.workflows.petct.longitudinal import read_patients
    from breastseg.workflows.petct.network import Recipe, cross_validate

    recipe = Recipe(
        patch_size=patch_size,
        base_filters=filters,
        epochs=epochs,
        patches_per_scan=patches_per_scan,
        batch_size=batch_size,
        learning_rate=learning_rate,
        precision=Precision(precision),
        folds=folds,
        seed=seed,
    )
    patients = read_patients(patients_csv)
    console = Console(stderr=True)
    model = cross_validate(
        patients,
        Kind(kind),
        recipe,
        mask_name,
        checkpoints,
        device,
        progress=lambda m: console.print(m),
        pet_units=pet_units,
    )
    model.save(out_path)
    scores = [(m.fold, m.best_validation_dice) for m in model.members if m.best_validation_dice is not None]
    table = ", ".join(f"{fold} {dice:.3f}" for fold, dice in scores)
    Console().print(f"held-out Dice per fold (model grid): {table}")
    _say_postprocessing(model.postprocessing)
    Console().print(f"written {out_path} and {out_path.with_suffix('.card.md')}")


def _say_postprocessing(post: dict | None) -> None:
    if not post:
        return
    if post.get("refused"):
        click.echo(f"breastseg: warning: post-processing not chosen: {post['refused']}", err=True)
        return
    chosen = post["min_contrast"]
    best = next(row for row in post["cv"] if row["min_contrast"] == chosen)
    rule = "keep every finding" if chosen is None else f"drop findings with uptake contrast < {chosen:g}"
    f1 = "—" if best["lesion_f1"] is None else f"{best['lesion_f1']:.3f}"
    Console().print(f"post-processing (out-of-fold choice): {rule} (lesion F1 {f1})")


@petct.command("postprocess")
@click.option("--model", "model_path", required=True, type=existing_path, help="A model `petct train` wrote.")
@_patients_option
@_mask_name_option
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the model here (default: update --model in place).",
)
@pet_units_option
@device_option
def postprocess_cmd(
    model_path: Path, patients_csv: Path, mask_name: str, out_path: Path | None, pet_units: str | None, device: str
) -> None:
    """Choose the model's post-processing again on its training patients' out-of-fold predictions.

    `petct train` already does this; run it for a model trained by an older breastseg, or after changing the
    reference masks. Every scan is predicted by the members that did not train on its patient; each contrast
    threshold (findings whose mean SUV is below it × the median SUV of the shell around them are dropped) is
    scored by lesion F1 (the study's 50 % rules), then global Dice, and the best — or none — is stored.

    \b
    Example:
      breastseg petct postprocess --model followup.pt --patients patients.csv
    """
    from breastseg.workflows.petct.longitudinal import read_patients
    from breastseg.workflows.petct.network import PetctModel, choose_postprocessing

    model = PetctModel.load(model_path)
    patients = read_patients(patients_csv)
    with status("predicting the training scans out of fold…"):
        model.postprocessing = choose_postprocessing(model, patients, mask_name, device, pet_units=pet_units).to_json()
    target = out_path or model_path
    model.save(target)
    _say_postprocessing(model.postprocessing)
    Console().print(f"written {target} and {target.with_suffix('.card.md')}")


class _ContrastType(click.ParamType):
    name = "model|off|RATIO"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        text = str(value).strip().lower()
        if text == "model":
            return "model"
        if text == "off":
            return None
        try:
            ratio = float(text)
        except ValueError:
            self.fail(f"{value!r} is not 'model', 'off' or a ratio such as 1.2", param, ctx)
        if not ratio > 0:
            self.fail(f"the contrast ratio must be positive, got {ratio}", param, ctx)
        return ratio


@petct.command("predict")
@click.option("--model", "model_path", required=True, type=existing_path, help="A model `petct train` wrote.")
@click.option("--scan", "scan_dir", type=existing_folder, default=None, help="One scan folder (pet, ct).")
@click.option(
    "--baseline",
    "baseline_dir",
    type=existing_folder,
    default=None,
    help="With --scan and a follow-up model: the patient's baseline scan folder.",
)
@click.option("--patient-id", default=None, help="With --scan: leave out the members trained on this patient.")
@click.option(
    "--patients",
    "patients_csv",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Or a patients table (or an autoPET tree): segment every patient's --timepoint scan.",
)
@click.option("--timepoint", type=click.Choice(["baseline", "followup"]), default="baseline", show_default=True)
@click.option(
    "--baseline-mask-name",
    default="lesions.nii.gz",
    show_default=True,
    help="Follow-up model: the baseline lesion mask in the baseline folder (a reference or a prediction).",
)
@click.option(
    "--out-name", default="lesions_pred.nii.gz", show_default=True, help="Mask written in each folder (or --out)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the masks here as OUT/<patient>/<timepoint>/<out-name> instead of into the scan folders (then "
    "`petct evaluate --pred-dir OUT`); a follow-up model finds the baseline masks there too.",
)
@click.option("--mirror", is_flag=True, help="Test-time augmentation: also predict the left-right mirror.")
@click.option(
    "--min-contrast",
    type=_ContrastType(),
    default="model",
    show_default=True,
    help="Drop findings whose mean SUV is below this × their surroundings' median: 'model' (the threshold "
    "cross-validation chose at training, in the model card), 'off', or a ratio.",
)
@pet_units_option
@device_option
def predict_cmd(
    model_path: Path,
    scan_dir: Path | None,
    baseline_dir: Path | None,
    patient_id: str | None,
    patients_csv: Path | None,
    timepoint: str,
    baseline_mask_name: str,
    out_name: str,
    out_dir: Path | None,
    mirror: bool,
    min_contrast: float | Literal["model"] | None,
    pet_units: str | None,
    device: str,
) -> None:
    """Segment lesions with a trained PET/CT model; writes the mask (PET grid) into each scan folder, or into
    --out.

    A scan of a patient the model was trained on is segmented only by the members that did not train on that
    patient (cross-validated predictions, e.g. the baseline network on the same patients' follow-ups). Then
    `petct evaluate`, `petct biomarkers` and `petct response --mask-name lesions_pred.nii.gz`.

    \b
    Example:
      breastseg petct predict --model baseline.pt --patients patients.csv --timepoint baseline
      breastseg petct predict --model followup.pt --patients patients.csv --timepoint followup \\
          --baseline-mask-name lesions_pred.nii.gz --out-name lesions_fu_pred.nii.gz
    """
    from breastseg.workflows.petct.inputs import Kind
    from breastseg.workflows.petct.longitudinal import PatientScans, read_patients
    from breastseg.workflows.petct.network import PetctModel, predict_patients

    if (scan_dir is None) == (patients_csv is None):
        raise click.UsageError("give one of --scan or --patients")
    model = PetctModel.load(model_path)
    if patients_csv is not None:
        patients = read_patients(patients_csv)
    else:
        assert scan_dir is not None
        kind = model.preprocessing.kind
        if kind == "followup" and baseline_dir is None:
            raise click.UsageError("a follow-up model needs --baseline with --scan")
        pid = patient_id or ""  # no id: a new patient, the whole ensemble
        if kind == "followup" and baseline_dir is not None:
            patients = [PatientScans(pid, baseline_dir, scan_dir)]
        else:
            patients = [PatientScans(pid, scan_dir)]
        timepoint = "followup" if kind == "followup" else "baseline"
    with status("segmenting…") as step:
        done = predict_patients(
            model,
            patients,
            Kind(timepoint),
            out_name,
            baseline_mask_name,
            device,
            mirror,
            progress=step,
            min_contrast=min_contrast,
            out_dir=out_dir,
            pet_units=pet_units,
        )
    for pid, info in done.items():
        who = pid or "new patient"
        line = f"{who}: {info['mask']} (members {', '.join(info['members'])})"
        if info["removed"]:
            found = ", ".join(f"{c['voxels']} voxels at contrast {c['contrast']:.2f}" for c in info["removed"])
            line += f"; dropped as indistinct: {found}"
        Console(soft_wrap=True).print(line)


@petct.command("organs")
@click.option("--scan", "scan_dir", required=True, type=existing_folder, help="Scan folder (pet, ct).")
@click.option(
    "--fast/--full",
    default=True,
    show_default=True,
    help="TotalSegmentator's 3 mm model (total_fast) or its 1.5 mm models (total).",
)
@click.option("--device", default="cpu", show_default=True, help="TotalSegmentator's device: cpu, gpu, gpu:N, mps.")
@pet_units_option
def organs_cmd(scan_dir: Path, fast: bool, device: str, pet_units: str | None) -> None:
    """Liver and bone masks from TotalSegmentator (optional extra), written as liver.nii.gz and bone.nii.gz on
    the PET grid of the scan folder, where biomarkers and response read them.

    TotalSegmentator must be installed with its weights already downloaded: breastseg never fetches them
    (run `totalseg_download_weights -t total_fast` yourself). Without it, give masks or use --bone-from-ct.

    \b
    Example:
      breastseg petct organs --scan patient0/baseline
    """
    from breastseg.io import write_image
    from breastseg.workflows.petct.inputs import ct_path
    from breastseg.workflows.petct.longitudinal import read_scan_pet
    from breastseg.workflows.petct.organs import organ_masks

    suv, _ = read_scan_pet(scan_dir, pet_units)
    with status("TotalSegmentator: liver and bones…"):
        masks = organ_masks(ct_path(scan_dir), suv, fast, device)
    for name, mask in masks.items():
        write_image(suv.with_array(mask.astype(np.uint8), units="label"), scan_dir / f"{name}.nii.gz")
        Console().print(f"{name}: {int(mask.sum())} PET voxels → {scan_dir / f'{name}.nii.gz'}")
