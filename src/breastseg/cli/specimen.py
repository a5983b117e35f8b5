"""``breastseg specimen``: margin assessment of a lumpectomy specimen on micro-PET-CT.

The torch / MONAI / Optuna stack is imported inside the commands that train or combine networks, so that
``--help`` and the threshold method start in a fraction of a second and ``assess --method resunet`` can load
it while the images are read (:func:`breastseg.workflows.specimen.pipeline.start_model_load`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from breastseg.cli.options import dicom_out_option, existing_folder, existing_path, pet_units_option, scheduler_option
from breastseg.errors import InputError
from breastseg.learn.patches import PatchConfig
from breastseg.learn.splits import nested_folds
from breastseg.progress import bar, status
from breastseg.workflows.specimen.distil import DistilConfig
from breastseg.workflows.specimen.inference import REFERENCE, VolumeInference
from breastseg.workflows.specimen.lamellae import cases_from_manifests, read_lamellae
from breastseg.workflows.specimen.margin import describe_interval
from breastseg.workflows.specimen.normalisation import fit_normalisation
from breastseg.workflows.specimen.pipeline import AssessConfig, run_assessment
from breastseg.workflows.specimen.preprocess import PetUnits, PreprocessConfig
from breastseg.workflows.specimen.result import describe_networks
from breastseg.workflows.specimen.threshold import fit_threshold_model

_FACES = ("+x", "-x", "+y", "-y", "+z", "-z")


def _face_names(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    names: dict[str, str] = {}
    for part in text.split(","):
        key, _, name = part.partition("=")
        key = key.strip()
        if key not in _FACES or not name.strip():
            raise InputError(f"--orientation takes FACE=name pairs with FACE one of {', '.join(_FACES)}; got {part!r}")
        names[key] = name.strip()
    return names


_manifest_option = click.option(
    "--manifest",
    "manifests",
    required=True,
    multiple=True,
    type=click.Path(exists=True),
    help="Lamella manifest CSV (rows: patient_id, slice_id, tumour_type, ct, pet, label) or an nnU-Net raw "
    "dataset folder (_0000 CT, _0001 PET); repeatable.",
)
_patient_pattern_option = click.option(
    "--patient-pattern",
    default=None,
    help="For an nnU-Net dataset without breastseg's patient map in dataset.json: a regular expression whose group "
    "'patient' (or first group) takes the patient id from each case name, e.g. '^(?P<patient>[^_]+)_' for P01_s03 "
    "(lamellae are split by patient; without a map or a pattern the dataset is refused).",
)
_tumour_type_option = click.option(
    "--tumour-type",
    "tumour_types",
    multiple=True,
    default=("NST",),
    show_default=True,
    help="Use slices of these tumour types (the study treats NST apart from ILC + DCIS).",
)


@click.group()
def specimen() -> None:
    """Margin assessment of a lumpectomy specimen on micro-PET-CT (Maris et al. 2025)."""


@specimen.command("assess")
@click.option(
    "--ct",
    "ct_path",
    required=True,
    type=existing_path,
    help="Micro-CT in HU: a DICOM folder or a NIfTI/NRRD/MHA file.",
)
@click.option(
    "--pet",
    "pet_path",
    required=True,
    type=existing_path,
    help="Micro-PET co-registered with the CT: DICOM folder (SUV tags read) or NIfTI/NRRD/MHA.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (made if missing; breastseg's files in it are replaced when the run succeeds, others kept).",
)
@dicom_out_option(
    "seg.dcm (tumour, specimen on the CT series), sr.dcm (TID 1500: margin status, minimum margin, "
    "closest face, volumes, SUL) and report.dcm (the figure). Needs a DICOM CT."
)
@click.option(
    "--method",
    type=click.Choice(["threshold", "resunet"]),
    default="threshold",
    show_default=True,
    help="Intensity-threshold ensemble, or a Residual U-Net bundle run slice-wise along all three axes.",
)
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Model file: a threshold JSON or a ResU-Net bundle (.pt); default: the packaged threshold model.",
)
@click.option(
    "--patient-id",
    default=None,
    help="Leave out bundle members trained on this patient (leakage guard when evaluating).",
)
@pet_units_option
@click.option(
    "--pet-info",
    "pet_info",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSON with patient weight/height/sex, injected dose and times, for a Bq/ml PET without DICOM.",
)
@click.option(
    "--positive-margin-mm",
    type=click.FloatRange(min=0.0),
    default=0.1,
    show_default=True,
    help="Margin at or below which the status is positive.",
)
@click.option(
    "--allow-pair-mismatch",
    is_flag=True,
    help="Assess a DICOM CT and PET whose PatientID, StudyInstanceUID or FrameOfReferenceUID differ (refused by "
    "default: they may be two patients or two positions).",
)
@click.option(
    "--keep-all-components",
    is_flag=True,
    help="Keep every tumour component (known multifocal tumour); default keeps the largest.",
)
@click.option(
    "--working-spacing",
    "working_spacing",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Resample to this isotropic spacing (mm) for speed, e.g. 0.2; default: the CT grid.",
)
@click.option(
    "--slice-step",
    type=click.IntRange(min=1),
    default=VolumeInference().slice_step,
    show_default=True,
    help="ResU-Net: run every N-th slice along each axis and interpolate between (1: every slice, the study's "
    "full method; see benchmarks/specimen_inference.py for what the default changes).",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default=VolumeInference().precision,
    show_default=True,
    help="ResU-Net arithmetic: auto = bfloat16 where the CPU/GPU computes it natively (about 2× faster), "
    "else float32 (the study's).",
)
@click.option(
    "--device",
    default=VolumeInference().device,
    show_default=True,
    help="ResU-Net device: auto (a CUDA GPU when present, else the CPU), cpu, cuda or cuda:N.",
)
@click.option(
    "--exact",
    is_flag=True,
    help="ResU-Net: the study's exact method — every member of the bundle (never its distilled student), every "
    "slice, float32; overrides --slice-step and --precision. Default: the bundle's student when it has one.",
)
@click.option(
    "--confirm-band",
    type=click.FloatRange(min=0.0, max=0.5, max_open=True),
    default=VolumeInference().confirm_band,
    show_default=True,
    help="ResU-Net with a distilled student: when a tumour drawn at probability 0.5 ± this would change the "
    "student's margin status, the members decide it at the exact settings (slower, about 20 s on 2 cores); "
    "0: always take the student's.",
)
@click.option(
    "--orientation",
    default=None,
    help="Names of the specimen's faces, e.g. '+x=lateral,-x=medial,+z=superior' (default: LPS names).",
)
def assess(
    ct_path: Path,
    pet_path: Path,
    out_dir: Path,
    dicom_out: Path | None,
    overwrite: bool,
    method: str,
    model: str | None,
    pet_units: str | None,
    pet_info: str | None,
    positive_margin_mm: float,
    allow_pair_mismatch: bool,
    keep_all_components: bool,
    working_spacing: float | None,
    slice_step: int,
    precision: str,
    device: str,
    exact: bool,
    confirm_band: float,
    orientation: str | None,
    patient_id: str | None,
) -> None:
    """Segment the tumour and report the margin status of one specimen.

    Writes result.json (margin status, minimum margin in mm, closest point and face, per-face margins,
    volumes, timings), tumour_mask.nii.gz and specimen_mask.nii.gz on the CT grid, and report.html with
    its figures.

    \b
    Example (a phantom with known truth):
      breastseg phantom specimen --out case0 --margin-mm 1.5
      breastseg specimen assess --ct case0/ct.nii.gz --pet case0/pet.nii.gz \\
          --pet-info case0/truth.json --out case0/assessment

    \b
    From DICOM, with DICOM SEG + SR for the PACS:
      breastseg phantom specimen --out case1 --dicom
      breastseg specimen assess --ct case1/dicom/ct --pet case1/dicom/pet \\
          --out case1/assessment --dicom-out case1/assessment-dicom
    """
    config = AssessConfig(
        method="resunet" if method == "resunet" else "threshold",
        model=model,
        pet_units=PetUnits(pet_units) if pet_units else None,
        positive_margin_mm=positive_margin_mm,
        keep_largest_component=not keep_all_components,
        face_names=_face_names(orientation),
        patient_id=patient_id,
        allow_pair_mismatch=allow_pair_mismatch,
        preprocess=PreprocessConfig(working_spacing_mm=working_spacing),
        inference=dataclasses.replace(REFERENCE, device=device)
        if exact
        else VolumeInference(slice_step=slice_step, precision=precision, device=device, confirm_band=confirm_band),
    )
    with status("starting…") as step:
        result = run_assessment(
            ct_path,
            pet_path,
            out_dir,
            config,
            pet_info,
            progress=lambda text: step(f"{text}…"),
            dicom_out=dicom_out,
            overwrite=overwrite,
        )
    m = result.margin
    table = Table(title="specimen margin", show_header=False)
    colour = "red" if result.positive else "green"
    table.add_row("status", f"[bold {colour}]{m.status.upper()}[/]")
    table.add_row("minimum margin", "—" if m.min_margin_mm is None else f"{m.min_margin_mm:.2f} mm")
    if (interval := describe_interval(m.as_dict())) is not None:
        table.add_row("margin interval", interval)
    table.add_row("closest face", str(m.closest_face))
    if m.ensemble_positive_fraction is not None:
        table.add_row("ensemble calling positive", f"{100 * m.ensemble_positive_fraction:.0f} %")
    if (networks := describe_networks(result.model)) is not None:
        table.add_row("networks", networks)
    table.add_row("tumour volume", f"{result.tumour_volume_ml:.2f} ml")
    table.add_row("time", f"{result.timings_s['total']:.1f} s")
    table.add_row("report", str(out_dir / "report.html"))
    if dicom_out is not None:
        table.add_row("DICOM", f"{dicom_out} (seg.dcm, sr.dcm, report.dcm)")
    if m.reason:
        table.add_row("note", m.reason)
    for warning in result.warnings:
        table.add_row("[bold yellow]warning[/]", warning)
    Console().print(table)


@specimen.command("fit-threshold")
@_manifest_option
@_patient_pattern_option
@click.option(
    "--input",
    "kind",
    type=click.Choice(["ct", "pet", "petct"]),
    default="petct",
    show_default=True,
    help="What is thresholded: absolute HU (ct), relative SUL (pet), or CT-gated relative SUL (petct).",
)
@_tumour_type_option
@click.option(
    "--folds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Patient-grouped folds: one threshold each, averaged as an ensemble in 3D.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the fold split.")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model file to write (JSON; a .card.md model card is written beside it).",
)
@click.option("--description", default="", help="What the training data is, for the model card.")
def fit_threshold(
    manifests: tuple[str, ...],
    patient_pattern: str | None,
    kind: str,
    tumour_types: tuple[str, ...],
    folds: int,
    seed: int,
    out_path: Path,
    description: str,
) -> None:
    """Fit the study's intensity-threshold baseline on 2D lamellae.

    CT: HU threshold swept −2000…+2000 in steps of 2; PET: 0–100 % of the patient's SUL maximum; PET-CT: the
    CT's high-density tissue (Otsu) gates the PET, then a relative threshold. The best mean Dice over the
    training patients wins.
    """
    cases = cases_from_manifests(manifests, tumour_types, patient_pattern)
    model = fit_threshold_model(
        "ct" if kind == "ct" else "pet" if kind == "pet" else "petct",
        cases,
        n_folds=folds,
        seed=seed,
        tumour_types=tumour_types,
        data_description=description,
    )
    model.save(out_path)
    table = Table(title=f"threshold model ({kind})")
    table.add_column("fold")
    table.add_column("threshold")
    table.add_column("mean training Dice")
    for i, f in enumerate(model.folds):
        table.add_row(str(i), f"{f.value:g}", f"{f.mean_training_dice:.3f}")
    Console().print(table)
    Console().print(f"{model.card['folds_note']}; written {out_path} and {out_path.with_suffix('.card.md')}")


@specimen.command("train")
@_manifest_option
@_patient_pattern_option
@click.option(
    "--input",
    "inputs",
    type=click.Choice(["ct", "pet", "petct"]),
    default="petct",
    show_default=True,
    help="Network input channels.",
)
@_tumour_type_option
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Ensemble members: one per patient-grouped fold (validation for early stopping).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True, help="Maximum epochs per member.")
@click.option("--depth", type=click.IntRange(min=2, max=6), default=4, show_default=True, help="U-Net levels.")
@click.option(
    "--channels",
    "first_channels",
    type=click.IntRange(min=2),
    default=16,
    show_default=True,
    help="Channels of the first level (doubling per level).",
)
@click.option("--patch-size", type=click.IntRange(min=16), default=96, show_default=True, help="Patch size, pixels.")
@click.option("--patches-per-image", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--positive-bias",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Share of patches centred on a malignant pixel (the rest anywhere in the tissue).",
)
@click.option("--learning-rate", type=click.FloatRange(min=0.0, min_open=True), default=0.01, show_default=True)
@click.option(
    "--loss",
    type=click.Choice(["dice", "dice_ce"]),
    default="dice",
    show_default=True,
    help="dice: the study's Dice loss (foreground, unknown pixels masked); dice_ce: plus pixel-wise cross-entropy.",
)
@click.option(
    "--ct-percentiles",
    type=(float, float),
    default=(5.0, 95.0),
    show_default=True,
    help="Percentiles of the training foreground HU that bound the CT's min-max scaling (the study's 5 and 95).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of splits, initialisation and sampling.")
@click.option(
    "--init-from",
    "init_from",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Fine-tune the members of this bundle (transfer learning, e.g. NST → ILC + DCIS).",
)
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for per-epoch checkpoints; an interrupted run resumes from them.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bundle file to write (.pt).",
)
@click.option("--description", default="", help="What the training data is, for the model card.")
@scheduler_option
def train_cmd(
    manifests: tuple[str, ...],
    patient_pattern: str | None,
    inputs: str,
    tumour_types: tuple[str, ...],
    folds: int,
    epochs: int,
    depth: int,
    first_channels: int,
    patch_size: int,
    patches_per_image: int,
    positive_bias: float,
    learning_rate: float,
    loss: str,
    ct_percentiles: tuple[float, float],
    seed: int,
    init_from: str | None,
    checkpoints: Path | None,
    out_path: Path,
    description: str,
    scheduler: str | None,
) -> None:
    """Train the Residual U-Net ensemble on 2D lamellae and write a model bundle (--scheduler: one member per
    Dask task).

    \b
    Example:
      breastseg specimen train --manifest lamellae/manifest.csv --input petct --epochs 40 --out resunet.pt
      breastseg specimen assess --ct CT --pet PET --method resunet --model resunet.pt --out result
    """
    from breastseg.learn.trainer import Loss, TrainConfig
    from breastseg.nets.resunet import ResUNetConfig
    from breastseg.workflows.specimen.bundle import ModelBundle
    from breastseg.workflows.specimen.train import ResUNetTraining, train_bundle

    slices = read_lamellae(manifests, tumour_types, patient_pattern)
    spec = ResUNetTraining(
        inputs=inputs,
        net=ResUNetConfig(depth=depth, first_channels=first_channels),
        train=TrainConfig(
            epochs=epochs,
            learning_rate=learning_rate,
            loss=Loss(loss),
            seed=seed,
            patch=PatchConfig(size=patch_size, per_image=patches_per_image, positive_bias=positive_bias),
        ),
        folds=folds,
        seed=seed,
        ct_percentiles=ct_percentiles,
    )
    base = ModelBundle.load(init_from) if init_from else None
    bundle = train_bundle(
        slices, spec, init_from=base, checkpoint_dir=checkpoints, description=description, scheduler=scheduler
    )
    bundle.save(out_path)
    table = Table(title=f"ResU-Net bundle ({inputs}), {len(slices)} slices")
    table.add_column("member")
    table.add_column("validation patients")
    table.add_column("best validation Dice")
    for m in bundle.members:
        table.add_row(m.fold, ", ".join(m.validation_patients), f"{m.best_validation_dice:.3f}")
    Console().print(table)
    Console().print(f"written {out_path} ({out_path.stat().st_size / 1e6:.1f} MB)")


@specimen.command("combine")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Bundle to write."
)
@click.option("--description", default=None, help="What the ensemble is, for the model card.")
def combine(bundles: tuple[Path, ...], out_path: Path, description: str | None) -> None:
    """Join bundles into one ensemble (e.g. five test folds' five models → the study's 25).

    Every member keeps its own network, normalisation and training patients (the leakage guard still works);
    the bundles must share inputs and pixel size.

    \b
    Example:
      breastseg specimen combine fold0.pt fold1.pt fold2.pt fold3.pt fold4.pt --out ensemble25.pt
    """
    from breastseg.workflows.specimen.bundle import ModelBundle, combine_bundles

    loaded = [ModelBundle.load(p) for p in bundles]
    card = {
        **loaded[0].card,
        "data": description or "; ".join(str(b.card.get("data", p.name)) for b, p in zip(loaded, bundles, strict=True)),
        "members": sum(len(b.members) for b in loaded),
        "combined_from": [p.name for p in bundles],
    }
    combined = combine_bundles(loaded, card)
    combined.save(out_path)
    Console().print(f"written {out_path}: {len(combined.members)} members ({out_path.stat().st_size / 1e6:.1f} MB)")


@specimen.command("distil")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The ensemble bundle to distil (e.g. the study's 25 members from `specimen combine`).",
)
@click.option(
    "--specimens",
    "manifest",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of 3D specimens to learn from: case_id, ct, pet (optional pet_info, patient_id); no labels needed.",
)
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Bundle to write."
)
@click.option("--depth", type=click.IntRange(2, 6), default=DistilConfig().depth, show_default=True)
@click.option("--channels", type=click.IntRange(4, 64), default=DistilConfig().first_channels, show_default=True)
@click.option("--steps", type=click.IntRange(1), default=DistilConfig().steps, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="Training arithmetic: auto = bfloat16 where native (the teacher always runs float32).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def distil(
    model_path: Path,
    manifest: Path,
    out_path: Path,
    depth: int,
    channels: int,
    steps: int,
    seed: int,
    precision: str,
    device: str,
) -> None:
    """Distil a bundle's members into one student network that reproduces their probability (the fast path).

    The teacher is the exact method (every member, every slice, float32) on each specimen; the student learns its
    mean tumour probability slice by slice along all three axes. The bundle is written again with the student
    beside its members: `specimen assess` then runs the student (one network instead of all members), and
    `specimen assess --exact` still runs the members. The student's training patients are every member's and
    the specimens', so the leakage guard refuses it for those patients.

    \b
    Example:
      breastseg specimen distil --model ensemble25.pt --specimens specimens/manifest.csv --out ensemble25_fast.pt
    """
    from breastseg.predict.device import resolve_device, resolve_precision
    from breastseg.workflows.specimen.distil import distil_bundle

    cfg = DistilConfig(
        depth=depth,
        first_channels=channels,
        steps=steps,
        seed=seed,
        precision=resolve_precision(precision, resolve_device(device)),
    )
    with status("distilling…") as step:
        result = distil_bundle(model_path, manifest, out_path, cfg, device, progress=step)
    Console().print(
        f"written {out_path}: a student of {result.teacher_members} members, learnt on {result.specimens} specimens "
        f"(teacher {result.seconds['teacher']:.0f} s, training {result.seconds['training']:.0f} s, "
        f"final loss {result.final_loss:.4f})"
    )


@specimen.command("search")
@_manifest_option
@_patient_pattern_option
@click.option("--input", "inputs", type=click.Choice(["ct", "pet", "petct"]), default="petct", show_default=True)
@_tumour_type_option
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Trials this process runs (the study ran 100 per test fold).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Epochs per model in a trial (the study trained 150).",
)
@click.option(
    "--space",
    type=click.Choice(["study", "small"]),
    default="study",
    show_default=True,
    help="Search ranges: the study's, or a small one that runs in minutes on a CPU.",
)
@click.option("--outer", type=click.IntRange(min=2), default=5, show_default=True, help="Outer (test) folds.")
@click.option("--inner", type=click.IntRange(min=2), default=5, show_default=True, help="Inner folds per test fold.")
@click.option(
    "--test-fold",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Which outer fold's training patients this search tunes on.",
)
@click.option(
    "--storage",
    default="optuna.db",
    show_default=True,
    help="SQLite file, or postgresql://user@host:port/db to share one study between machines.",
)
@click.option("--study-name", default=None, help="Study name (default: specimen-<input>-fold<k>).")
@click.option("--seed", default=0, show_default=True)
@scheduler_option
def search(
    manifests: tuple[str, ...],
    patient_pattern: str | None,
    inputs: str,
    tumour_types: tuple[str, ...],
    trials: int,
    epochs: int,
    space: str,
    outer: int,
    inner: int,
    test_fold: int,
    storage: str,
    study_name: str | None,
    seed: int,
    scheduler: str | None,
) -> None:
    """Tune the Residual U-Net with Optuna (TPE) on one test fold's inner folds.

    Run the same command on several machines with one PostgreSQL --storage and --study-name to share
    the search; each process adds its --trials. With --scheduler the --trials run as tasks on a Dask cluster
    (one trial per task; the study in a --storage every worker reaches: PostgreSQL, or an absolute SQLite path
    on a shared file system).
    """
    from breastseg.workflows.specimen.search import SearchSpace, run_search, summarise
    from breastseg.workflows.specimen.train import to_train_images

    slices = read_lamellae(manifests, tumour_types, patient_pattern)
    types = {s.patient_id: s.tumour_type for s in slices}
    folds = nested_folds(types, outer, inner, seed)
    if test_fold >= len(folds):
        raise InputError(f"--test-fold must be below --outer ({outer})")
    fold = folds[test_fold]
    pool = [s for s in slices if s.patient_id not in set(fold.test)]
    norm = fit_normalisation(inputs, [s.ct for s in pool], [s.tissue for s in pool])
    name = study_name or f"specimen-{inputs}-fold{test_fold}"
    chosen = SearchSpace.small() if space == "small" else SearchSpace.study()
    images = to_train_images(pool, norm)
    if scheduler:
        from breastseg.workflows.specimen.cluster import run_search_on_dask

        study = run_search_on_dask(
            scheduler, images, fold.inner, storage=storage, study_name=name, n_trials=trials, epochs=epochs,
            space=chosen, seed=seed,
        )  # fmt: skip
    else:
        study = run_search(
            images, fold.inner, storage=storage, study_name=name, n_trials=trials, epochs=epochs, space=chosen,
            seed=seed,
        )  # fmt: skip
    Console().print(summarise(study))


@specimen.command("study")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=existing_folder,
    help="Cohort folder: lamellae/manifest.csv (2D, labelled) and optionally specimens/manifest.csv (3D, margin "
    "status); `breastseg phantom specimen-cohort` writes one.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: tables, Fig. 3, per-case rows, models and the Optuna studies; a rerun resumes here.",
)
@click.option(
    "--input",
    "inputs",
    type=click.Choice(["ct", "pet", "petct"]),
    multiple=True,
    default=("ct", "pet", "petct"),
    show_default=True,
    help="Inputs to cross-validate (repeatable).",
)
@click.option("--outer", type=click.IntRange(min=2), default=5, show_default=True, help="Test folds.")
@click.option("--inner", type=click.IntRange(min=2), default=5, show_default=True, help="Inner folds per test fold.")
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Optuna trials per test fold and input (the study ran 100).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="Maximum epochs per model (the study trained 150).",
)
@click.option(
    "--space",
    type=click.Choice(["study", "small"]),
    default="small",
    show_default=True,
    help="Search ranges: the study's, or a small one for CPUs.",
)
@click.option(
    "--storage",
    default=None,
    help="Optuna storage: SQLite file or postgresql://… shared by machines. [default: OUT/optuna.db]",
)
@click.option("--seed", default=0, show_default=True, help="Seed of splits, searches and training.")
def study(
    data_dir: Path,
    out_dir: Path,
    inputs: tuple[str, ...],
    outer: int,
    inner: int,
    trials: int,
    epochs: int,
    space: str,
    storage: str | None,
    seed: int,
) -> None:
    """Reproduce the specimen study's evaluation: Tables 2–4 and Fig. 3 from your own run.

    Nested stratified group cross-validation (OUTER × INNER) of the Residual U-Net with an Optuna search per
    test fold, against the intensity threshold fitted on the same folds, per input; Wilcoxon + Holm on the
    per-patient metrics; then the margin status of every 3D specimen with the PET-CT ensembles (25 networks,
    5 thresholds, minus any model that saw the specimen's patient), McNemar + Holm.

    \b
    Example (about 25 minutes on a 2-core CPU):
      breastseg phantom specimen-cohort --out cohort
      breastseg specimen study --data cohort --out study
    """

    from breastseg.workflows.specimen.cohort import read_specimen_manifest
    from breastseg.workflows.specimen.study import StudyConfig, run_study, steps
    from breastseg.workflows.specimen.study_report import write_study

    lamellae = data_dir / "lamellae" / "manifest.csv"
    if not lamellae.is_file():
        raise InputError(
            f"{data_dir}: no lamellae/manifest.csv (the cohort layout is in `breastseg specimen study --help`)"
        )
    specimen_manifest = data_dir / "specimens" / "manifest.csv"
    cfg = StudyConfig(
        inputs=tuple(dict.fromkeys(inputs)),
        outer=outer,
        inner=inner,
        trials=trials,
        epochs=epochs,
        space=space,
        storage=storage,
        seed=seed,
    )
    with status("reading the cohort…"):
        slices = read_lamellae([lamellae], cfg.tumour_types)
        cases = read_specimen_manifest(specimen_manifest) if specimen_manifest.is_file() else []
    with bar("study", total=steps(cfg, len(cases))) as shown:
        result = run_study(
            slices, cases, out_dir, cfg, progress=lambda text, advance: shown.update(description=text, advance=advance)
        )
    written = write_study(result, out_dir)
    for key in ("table2", "table3", "table4"):
        if key in written:
            click.echo(written[key].read_text(encoding="utf-8"))
    click.echo(f"report: {written['report']}  (wall time per stage: {result.seconds} s)")
