"""``breastseg specimen assess``: from a micro-PET-CT pair to the margin status, as the study's Methods read.

read → preprocess (SUL, median, PET onto CT, container, Otsu tissue, background, crop) → predict (threshold
ensemble, or the Residual U-Net bundle slice-wise along all three axes) → post-process (0.5, holes, largest 3D
component) → margin
read-out → write (result.json, masks, figures, report.html), all into a temporary folder renamed at the end.

For the ResU-Net, importing torch and MONAI and reading the bundle take seconds; :func:`run_assessment` starts
them in a background thread (:func:`start_model_load`) while the images are read and preprocessed, which is
why this module imports no torch at the top.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from breastseg.errors import InputError, ModelError
from breastseg.image import Image
from breastseg.io import image_format, read_image, write_image
from breastseg.io.atomic import atomic_path, write_json
from breastseg.io.dicom import DicomSeries, read_dicom_series
from breastseg.io.dicom_meta import PetInfo
from breastseg.io.outputs import prepare_output_folder
from breastseg.io.pet import read_pet_series
from breastseg.masks import binarize, depth_below_surface_mm
from breastseg.sanity import NotAssessable, check_same_acquisition
from breastseg.workflows.specimen.inference import REFERENCE, VolumeInference, predict_volume
from breastseg.workflows.specimen.margin import (
    INTERVAL_PROBABILITIES,
    POSITIVE_MARGIN_MM,
    IntervalMasks,
    assess_margin,
    interval_from_masks,
    margin_interval,
    members_positive,
    status_is_settled,
    unsettled_negative,
)
from breastseg.workflows.specimen.preprocess import (
    PetUnits,
    PreprocessConfig,
    SpecimenPair,
    edges_touched,
    preprocess,
)
from breastseg.workflows.specimen.report_text import figure_header, figure_title
from breastseg.workflows.specimen.result import AssessmentResult
from breastseg.workflows.specimen.threshold import ThresholdModel, ensemble_probability, relative_uptake
from breastseg.workflows.specimen.uptake_edge import contrast_midpoint

if TYPE_CHECKING:
    from breastseg.workflows.specimen.bundle import EnsembleNet, ModelBundle

Method = Literal["threshold", "resunet"]
DEFAULT_THRESHOLD_MODEL = "specimen_threshold_petct.json"
DEFAULT_RESUNET_BUNDLE = "specimen_resunet_demo.pt"


@dataclass(frozen=True)
class AssessConfig:
    """Options of a specimen assessment (defaults: the study's)."""

    method: Method = "threshold"
    model: str | None = None
    pet_units: PetUnits | None = None
    positive_margin_mm: float = POSITIVE_MARGIN_MM
    keep_largest_component: bool = True
    probability_threshold: float = 0.5
    interval_probabilities: tuple[float, float] = INTERVAL_PROBABILITIES
    face_names: Mapping[str, str] | None = None
    patient_id: str | None = None
    allow_pair_mismatch: bool = False
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    inference: VolumeInference = field(default_factory=VolumeInference)

    def __post_init__(self) -> None:
        low, high = self.interval_probabilities
        if not 0.0 < low <= self.probability_threshold <= high < 1.0:
            raise InputError(
                f"the margin interval's probabilities {low} and {high} must lie in (0, 1) on either side of the "
                f"tumour probability threshold {self.probability_threshold}"
            )


@dataclass(eq=False)
class SpecimenAssessment:
    """Everything an assessment produced, before it is written."""

    result: AssessmentResult
    pair: SpecimenPair
    tumour: np.ndarray
    probability: np.ndarray
    closest_index: tuple[int, int, int]


def default_model_path(method: Method) -> Path:
    """The packaged model of a method; both are fitted on synthetic phantoms (see their cards), for demos."""
    name = DEFAULT_THRESHOLD_MODEL if method == "threshold" else DEFAULT_RESUNET_BUNDLE
    path = Path(str(resources.files("breastseg.models") / name))
    if not path.is_file():
        raise ModelError(f"no packaged {method} model ({name}); give one with --model (breastseg specimen train)")
    return path


@dataclass(eq=False)
class Prediction:
    """The ensemble's tumour probability, each member's margin call, and what the model was."""

    probability: np.ndarray
    member_calls: list[bool]
    model_info: dict[str, Any]
    #: the margin interval's masks (:class:`IntervalMasks`); ``None``: the tumour drawn at the configured
    #: interval probabilities alone (a CT-only network: no PET edge to bound it)
    interval_masks: IntervalMasks | None = None


def network_interval_masks(
    probability: np.ndarray, pair: SpecimenPair, channels: tuple[str, ...], cfg: AssessConfig
) -> IntervalMasks | None:
    """The ResU-Net's interval contours: the tumour drawn at the lower interval probability (the lower end), and
    for the upper end the farther of the tumour drawn at the higher one and the PET's contrast midpoint
    (:func:`~breastseg.workflows.specimen.uptake_edge.contrast_midpoint`, around the wide tumour). The network's
    own two contours lie within a few tenths of a millimetre of each other and on the near side of the truth
    wherever the PET's blur carries its tumour into dense tissue (the same overshoot as the threshold's);
    the midpoint contour bounds that from the other side. ``None`` for a network without PET."""
    if "pet" not in channels:
        return None
    low_p, high_p = cfg.interval_probabilities
    tissue = pair.tissue
    wide, narrow = (binarize(probability, p, True, cfg.keep_largest_component, tissue) for p in (low_p, high_p))
    kind: Literal["pet", "petct"] = "petct" if "ct" in channels else "pet"
    feature = relative_uptake(kind, pair.ct.array, pair.pet.array, tissue)
    midpoint = contrast_midpoint(feature, tissue, wide, gated=kind == "petct")
    basis = (
        f"tumour drawn at probability ≥ {low_p:g} / the farther of probability ≥ {high_p:g} and the PET's "
        f"contrast midpoint, {midpoint.describe()}"
    )
    return IntervalMasks(wide, (narrow, midpoint.mask), basis, cfg.interval_probabilities)


@dataclass(eq=False)
class LoadedBundle:
    """A ResU-Net bundle read from ``path`` and the networks that run for this patient: its distilled student, or
    the members left after the leakage guard (``distilled`` says which)."""

    path: Path
    bundle: ModelBundle
    ensemble: list[EnsembleNet]
    distilled: bool = False


def choose_networks(path: Path, bundle: ModelBundle, cfg: AssessConfig) -> LoadedBundle:
    """The student when the inference options allow it (:attr:`VolumeInference.student`) and it is independent of
    ``cfg.patient_id``; else the members independent of that patient."""
    student = bundle.student_net(cfg.patient_id) if cfg.inference.student else None
    if student is not None:
        return LoadedBundle(path, bundle, [student], distilled=True)
    return LoadedBundle(path, bundle, bundle.ensemble(exclude_patient=cfg.patient_id))


def load_resunet(cfg: AssessConfig) -> LoadedBundle:
    """Read the configured (or packaged) ResU-Net bundle; imports torch and MONAI on first use."""
    from breastseg.workflows.specimen.bundle import ModelBundle

    path = Path(cfg.model) if cfg.model else default_model_path("resunet")
    return choose_networks(path, ModelBundle.load(path), cfg)


def start_model_load(cfg: AssessConfig) -> Future[LoadedBundle] | None:
    """Start :func:`load_resunet` in a background thread (ResU-Net only; ``None`` for the threshold method).

    Importing torch + MONAI and building the members is mostly Python and file reading, reading and
    preprocessing the images mostly NumPy/ITK code that releases the GIL, so the two overlap even on 2 cores.
    Errors (a missing or corrupt bundle) surface when the result is asked for.
    """
    if cfg.method != "resunet":
        return None
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="breastseg-model-load")
    future = executor.submit(load_resunet, cfg)
    executor.shutdown(wait=False)
    return future


def predict_tumour(
    pair: SpecimenPair,
    cfg: AssessConfig,
    progress: Callable[[str], None] | None = None,
    model: LoadedBundle | Future[LoadedBundle] | None = None,
    depth: np.ndarray | None = None,
) -> Prediction:
    """Run the configured method on the preprocessed pair (threshold ensemble or tri-planar ResU-Net ensemble).

    Each member's margin call is read from its own post-processed mask (0.5, largest component, no filling:
    holes never reach the surface) on the grid it was predicted on. ``model``: a ResU-Net bundle already loaded
    (or loading, :func:`start_model_load`); read from ``cfg`` when ``None``. ``depth``: the tissue's
    :func:`~breastseg.masks.depth_below_surface_mm` on the pair's grid, when the caller has it.
    """

    def pair_depth() -> np.ndarray:
        return depth if depth is not None else depth_below_surface_mm(pair.tissue, pair.ct.grid.spacing)

    def calls(masks: list[np.ndarray], tissue: np.ndarray, tissue_depth: np.ndarray) -> list[bool]:
        kept = [binarize(m, 0.5, False, cfg.keep_largest_component, tissue) for m in masks]
        return members_positive(kept, tissue_depth, cfg.positive_margin_mm)

    if cfg.method == "threshold":
        path = Path(cfg.model) if cfg.model else default_model_path("threshold")
        thresholds = ThresholdModel.load(path)
        feature = thresholds.feature(pair.ct.array, pair.pet.array, pair.tissue)
        used = thresholds.independent_folds(cfg.patient_id)
        members = thresholds.masks_of(feature, pair.tissue, cfg.patient_id)
        info = {
            "path": str(path),
            "input": thresholds.input,
            "folds": len(thresholds.folds),
            "folds_used": len(used),
            "excluded_patient": cfg.patient_id,
            "thresholds": [f.value for f in used],
            "threshold_units": thresholds.units,
        }
        member_calls = calls([m.astype(np.float32) for m in members], pair.tissue, pair_depth())
        interval = thresholds.interval_masks(feature, pair.tissue, cfg.patient_id)
        return Prediction(ensemble_probability(members), member_calls, info, interval)
    loaded = model.result() if isinstance(model, Future) else model or load_resunet(cfg)
    bundle, ensemble = loaded.bundle, loaded.ensemble
    inference = cfg.inference
    volume = predict_volume(ensemble, pair.ct, pair.pet, pair.tissue, bundle.pixel_spacing_mm, inference, progress)
    settled = _student_settles(volume.probability, pair, pair_depth(), cfg) if loaded.distilled else None
    if settled is False:  # the student cannot decide this one: the members do, at the exact settings
        if progress is not None:
            progress("the student's margin status is not settled: the ensemble decides")
        ensemble = bundle.ensemble(exclude_patient=cfg.patient_id)
        inference = dataclasses.replace(REFERENCE, device=inference.device)
        volume = predict_volume(ensemble, pair.ct, pair.pet, pair.tissue, bundle.pixel_spacing_mm, inference, progress)
        loaded = dataclasses.replace(loaded, ensemble=ensemble, distilled=False)
    info = {
        "path": str(loaded.path),
        "input": "+".join(bundle.normalisation.channels),
        "inference_path": "distilled student"
        if loaded.distilled
        else ("ensemble, deciding for the student" if settled is False else "ensemble"),
        "members_used": None if loaded.distilled else len(ensemble),
        "members_in_bundle": len(bundle.members),
        "excluded_patient": cfg.patient_id,
        "ct_limits_hu": sorted({(e.normalisation.ct_low_hu, e.normalisation.ct_high_hu) for e in ensemble}),
        "pixel_spacing_mm": list(volume.model_grid.spacing),
        "slice_step": inference.slice_step,
        "device": volume.device,
        "precision": volume.precision,
        "student_status_settled": settled,
        "student_confirm_band": cfg.inference.confirm_band if settled is not None else None,
    }
    # a student has no members to vote: no share of members calling the margin positive
    member_calls = (
        []
        if loaded.distilled
        else calls(
            volume.member_probabilities,
            volume.model_tissue,
            depth_below_surface_mm(volume.model_tissue, volume.model_grid.spacing),
        )
    )
    interval = network_interval_masks(volume.probability, pair, bundle.normalisation.channels, cfg)
    return Prediction(volume.probability, member_calls, info, interval)


def _student_settles(probability: np.ndarray, pair: SpecimenPair, depth: np.ndarray, cfg: AssessConfig) -> bool | None:
    """Whether the student's status holds for the tumour drawn anywhere in the confirmation band
    (:func:`~breastseg.workflows.specimen.margin.status_is_settled`); ``None`` when the band is 0 (not checked)."""
    band = cfg.inference.confirm_band
    if band <= 0:
        return None
    return status_is_settled(
        probability,
        pair.tissue,
        depth,
        cfg.positive_margin_mm,
        band,
        cfg.probability_threshold,
        cfg.keep_largest_component,
    )


def load_specimen(
    ct_path: str | Path,
    pet_path: str | Path,
    pet_info_path: str | Path | None = None,
    pet_units: PetUnits | None = None,
    ct: DicomSeries | None = None,
    check_pairing: bool = True,
) -> tuple[Image, Image, PetInfo | None]:
    """Read CT and PET (DICOM folders or NIfTI/NRRD/MHA; :func:`breastseg.io.pet.read_pet`): a PET info JSON
    replaces the headers' and gives a NIfTI PET its units (``pet_units``, when given, overrides them later).
    ``ct``: the CT series when already read. When both are DICOM they must name one patient, study and frame of
    reference (:func:`breastseg.sanity.check_same_acquisition`) unless ``check_pairing`` is off."""
    if ct is None and image_format(ct_path) == "dicom":
        ct = read_dicom_series(ct_path, modality="CT")
    ct_image = ct.image if ct is not None else read_image(ct_path, modality="CT")
    pet, info, pet_series = read_pet_series(pet_path, pet_info_path)
    if check_pairing and ct is not None and pet_series is not None:
        check_same_acquisition(ct.identity(), pet_series.identity(), override="--allow-pair-mismatch")
    return ct_image, pet, info


def assess_specimen(
    ct: Image,
    pet: Image,
    pet_info: PetInfo | None = None,
    config: AssessConfig | None = None,
    progress: Callable[[str], None] | None = None,
    model: LoadedBundle | Future[LoadedBundle] | None = None,
    sources: tuple[str, str] = ("CT", "PET"),
) -> SpecimenAssessment:
    """Assess the margin of one specimen (see the module docstring for the steps; ``model``: as
    :func:`predict_tumour`; ``sources``: the CT's and PET's names in messages).

    Raises:
        InputError: inputs that fail :mod:`breastseg.sanity` — :class:`~breastseg.sanity.NotAssessable` when the
            PET carries no signal in the specimen: never a "negative" margin from it.
    """
    cfg = config or AssessConfig()
    say = progress or (lambda _name: None)
    t_start = time.perf_counter()
    pair = preprocess(ct, pet, pet_info, cfg.pet_units, cfg.preprocess, progress=say, sources=sources)
    timings = dict(pair.timings_s)

    grid = pair.ct.grid
    t0 = time.perf_counter()
    depth = depth_below_surface_mm(pair.tissue, grid.spacing)  # the margin's, and the members' and student's calls
    depth_s = time.perf_counter() - t0

    say("predicting")
    t0 = time.perf_counter()
    prediction = predict_tumour(pair, cfg, say, model, depth)
    probability = prediction.probability
    timings["predict"] = round(time.perf_counter() - t0, 4)

    say("post-processing")
    t0 = time.perf_counter()
    tumour = binarize(
        probability,
        cfg.probability_threshold,
        fill=True,
        keep_largest=cfg.keep_largest_component,
        within=pair.tissue,
    )
    timings["postprocess"] = round(time.perf_counter() - t0, 4)
    _refuse_tumour_at_image_edge(pair, tumour, sources[0])

    say("margin")
    t0 = time.perf_counter() - depth_s  # the depth map is part of the margin step
    margin = assess_margin(
        tumour, pair.tissue, grid, cfg.positive_margin_mm, prediction.member_calls, cfg.face_names, depth=depth
    )
    if prediction.interval_masks is None:
        interval = margin_interval(
            probability,
            pair.tissue,
            depth,
            margin.min_margin_mm,
            cfg.interval_probabilities,
            cfg.keep_largest_component,
        )
        margin = dataclasses.replace(margin, interval_mm=interval, interval_probabilities=cfg.interval_probabilities)
    else:
        drawn = prediction.interval_masks
        wide, *narrow = (
            binarize(m, 0.5, True, cfg.keep_largest_component, pair.tissue) for m in (drawn.wide, *drawn.narrow)
        )
        interval = interval_from_masks(wide, narrow, depth, margin.min_margin_mm)
        margin = dataclasses.replace(
            margin, interval_mm=interval, interval_basis=drawn.basis, interval_probabilities=drawn.probabilities
        )
    timings["margin"] = round(time.perf_counter() - t0, 4)
    timings["total"] = round(time.perf_counter() - t_start, 4)

    if margin.closest_point_mm is not None:
        point = np.round(grid.world_to_index(margin.closest_point_mm))
    else:
        point = np.argwhere(pair.tissue).mean(axis=0).round()
    closest = (int(point[0]), int(point[1]), int(point[2]))
    voxel_ml = grid.voxel_volume_mm3 / 1000.0
    suv_in_tumour = pair.pet.array[tumour]
    result = AssessmentResult(
        margin=margin,
        tumour_volume_ml=round(float(tumour.sum() * voxel_ml), 4),
        specimen_volume_ml=round(float(pair.tissue.sum() * voxel_ml), 4),
        tumour_sul_max=round(float(suv_in_tumour.max()), 4) if suv_in_tumour.size else None,
        tumour_sul_mean=round(float(suv_in_tumour.mean()), 4) if suv_in_tumour.size else None,
        method=cfg.method,
        model=prediction.model_info,
        working_spacing_mm=tuple(grid.spacing),
        warnings=tuple(pair.warnings) + ((unsettled,) if (unsettled := unsettled_negative(margin)) else ()),
        otsu_tissue_threshold_hu=round(pair.otsu_hu, 2),
        container_voxels_removed=int(pair.container.sum()),
        timings_s=timings,
        config=cfg,
    )
    return SpecimenAssessment(result, pair, tumour, probability, closest)


def _refuse_tumour_at_image_edge(pair: SpecimenPair, tumour: np.ndarray, ct_source: str) -> None:
    """:class:`~breastseg.sanity.NotAssessable` when the predicted tumour reaches the edge of the CT's field of view:
    the tumour may go on beyond it, so no margin, positive or negative, can be read."""
    full = np.zeros(pair.full_grid_ct.shape, bool)
    full[pair.crop] = tumour
    if cut := edges_touched(full):
        raise NotAssessable(
            "field-of-view",
            f"{ct_source}: the tumour reaches the edge of the CT's field of view ({', '.join(cut)}); it may go on "
            "beyond the image, so no margin can be read. Scan the whole specimen",
        )


def _full_grid(pair: SpecimenPair, mask: np.ndarray, original_ct: Image) -> Image:
    full = np.zeros(pair.full_grid_ct.shape, dtype=np.uint8)
    full[pair.crop] = mask.astype(np.uint8)
    img = pair.full_grid_ct.with_array(full, units="label", modality="SEG")
    if not img.grid.same_as(original_ct.grid):
        img = img.resample_onto(original_ct, order=0)
    return img


def write_assessment(assessment: SpecimenAssessment, original_ct: Image, out_dir: str | Path) -> dict[str, Path]:
    """Write result.json, the masks on the CT's grid, the figures (three planes through the closest point; the 3D
    surfaces) and report.html into ``out_dir`` atomically."""
    from breastseg.report.figures import orthogonal_slices
    from breastseg.report.surface3d import write_surface_figure
    from breastseg.workflows.specimen.report_html import specimen_report

    out_dir = Path(out_dir)
    a = assessment
    with atomic_path(out_dir, producer="specimen assess") as tmp:
        tmp.mkdir(parents=True)
        paths = {
            "tumour_mask": write_image(_full_grid(a.pair, a.tumour, original_ct), tmp / "tumour_mask.nii.gz"),
            "specimen_mask": write_image(_full_grid(a.pair, a.pair.tissue, original_ct), tmp / "specimen_mask.nii.gz"),
        }
        result = a.result.to_json()
        margin = a.result.margin
        approach = None
        if margin.closest_point_mm is not None and margin.surface_point_mm is not None:
            approach = (margin.closest_point_mm, margin.surface_point_mm)
        paths["figure"] = orthogonal_slices(
            a.pair.ct,
            a.pair.pet,
            a.pair.tissue,
            a.tumour,
            a.closest_index,
            tmp / "figures" / "closest_point.png",
            title=figure_title(result),
            approach_mm=approach,
            header=figure_header(result),
        )
        paths["surface_3d"] = write_surface_figure(
            a.pair.tissue, a.tumour, a.pair.ct.grid, tmp / "figures" / "surface_3d.png", approach
        )
        result["files"] = {
            "tumour_mask": "tumour_mask.nii.gz",
            "specimen_mask": "specimen_mask.nii.gz",
            "report": "report.html",
            "figures": ["figures/closest_point.png", "figures/surface_3d.png"],
        }
        paths["result"] = write_json(result, tmp / "result.json")
        paths["report"] = specimen_report(result, tmp / "report.html")
    return {name: out_dir / p.relative_to(tmp) for name, p in paths.items()}


def run_assessment(
    ct_path: str | Path,
    pet_path: str | Path,
    out_dir: str | Path,
    config: AssessConfig | None = None,
    pet_info_path: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    dicom_out: str | Path | None = None,
    overwrite: bool = False,
) -> AssessmentResult:
    """Read, assess and write; the Python twin of ``breastseg specimen assess``. Returns what was read
    (``result.json`` holds its :meth:`~breastseg.workflows.specimen.result.AssessmentResult.to_json`).

    ``dicom_out``: also write a DICOM SEG, SR and secondary capture there
    (:mod:`breastseg.workflows.specimen.dicom_export`); the CT must then be DICOM, the series they reference.
    The output folders are checked before anything is computed (:func:`breastseg.io.outputs.prepare_output_folder`:
    never an input's folder, never a folder breastseg did not write unless ``overwrite``, writable, with room).

    Raises:
        NotAssessable: the inputs hold no usable signal (:mod:`breastseg.sanity`); with ``dicom_out``, an SR saying
            so ("Undetermined" margin status) is written there first.
    """
    cfg = config or AssessConfig()
    inputs = [ct_path, pet_path, pet_info_path, cfg.model]
    prepare_output_folder(out_dir, inputs=inputs, overwrite=overwrite, separate_from=[("--dicom-out", dicom_out)])
    if dicom_out is not None:
        prepare_output_folder(dicom_out, inputs=inputs, overwrite=overwrite, option="--dicom-out")
    model = start_model_load(cfg)
    ct_series = None
    if dicom_out is not None:
        if image_format(ct_path) != "dicom":
            raise InputError(f"{ct_path}: --dicom-out needs the CT as DICOM (the series the SEG and SR reference)")
        ct_series = read_dicom_series(ct_path, modality="CT")
    ct, pet, info = load_specimen(
        ct_path, pet_path, pet_info_path, cfg.pet_units, ct=ct_series, check_pairing=not cfg.allow_pair_mismatch
    )
    try:
        assessment = assess_specimen(ct, pet, info, cfg, progress, model, sources=(str(ct_path), str(pet_path)))
    except NotAssessable:
        if ct_series is not None and dicom_out is not None:  # the PACS learns that no margin was read
            from breastseg.workflows.specimen.dicom_export import write_not_assessable_sr

            write_not_assessable_sr(ct_series, dicom_out)
        raise
    assessment.result = assessment.result.with_inputs({"ct": str(ct_path), "pet": str(pet_path)})
    paths = write_assessment(assessment, ct, out_dir)
    if ct_series is not None and dicom_out is not None:
        from breastseg.workflows.specimen.dicom_export import write_specimen_dicom_outputs

        if progress:
            progress("writing DICOM")
        write_specimen_dicom_outputs(
            assessment.result.to_json(),
            _full_grid(assessment.pair, assessment.tumour, ct).array > 0,
            _full_grid(assessment.pair, assessment.pair.tissue, ct).array > 0,
            ct_series,
            paths["figure"],
            dicom_out,
        )
    return assessment.result
