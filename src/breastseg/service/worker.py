"""Workers: take a queued job, run the workflow its study goes to (:mod:`breastseg.service.routing`), write the
DICOM results, send them to the PACS.

A job's outputs go to ``STORE/results/<job id>/`` — a specimen's ``assessment/`` (result.json, masks,
report.html) and ``dicom/`` (seg.dcm, sr.dcm, report.dcm); a whole-body PET/CT's ``petct/`` (biomarkers.json,
lesions.csv, mip.png, the lesion mask, and ``response/`` against the patient's earlier study) and ``dicom/``
(seg.dcm, sr.dcm); a DCE-MRI's ``mri/`` (result.json, tumour.nii.gz, report.png) and ``dicom/`` (seg.dcm,
sr.dcm, report.dcm on the first post-contrast phase); an ultrasound study's ``ultrasound/`` (per image its mask,
overlay and JSON) and ``dicom/`` (per image ``<image>_seg.dcm``, ``<image>_sr.dcm`` and
``<image>_overlay.dcm``) — each written atomically, so a worker killed mid-job leaves no half result and the job
simply runs again. MRI and ultrasound studies are taken only with their model configured (``--mri-model``,
``--ultrasound-model``). While it works, a worker renews its job's lease; a failure is recorded with its reason
(``breastseg jobs show``) and can be retried.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from breastseg.errors import BreastsegError
from breastseg.io.dicom_names import SC_NAME, SEG_NAME, SR_NAME
from breastseg.sanity import NotAssessable
from breastseg.service.jobstore import Job, JobStore, Study, worker_id
from breastseg.service.layout import (
    ASSESSMENT,
    DICOM,
    MRI_RESULTS,
    PETCT_RESULTS,
    ULTRASOUND_RESULTS,
    result_folder,
    study_folder,
)
from breastseg.service.routing import MRI, PETCT, SPECIMEN, SPECIMEN_MAX_FOV_MM, ULTRASOUND, Route, route_study
from breastseg.service.sender import Destination, send_files
from breastseg.service.studies import study_datetime
from breastseg.workflows.specimen.pipeline import AssessConfig, run_assessment

LOG = logging.getLogger("breastseg.service")


@lru_cache(maxsize=2)
def _petct_model(path: Path) -> Any:
    """The PET/CT model, loaded once per worker process."""
    from breastseg.workflows.petct.network import PetctModel

    return PetctModel.load(path)


@lru_cache(maxsize=2)
def _mri_model(path: Path) -> Any:
    from breastseg.workflows.mri.network import MriModel

    return MriModel.load(path)


@lru_cache(maxsize=2)
def _ultrasound_model(path: Path) -> Any:
    from breastseg.workflows.ultrasound.model import UltrasoundModel

    return UltrasoundModel.load(path)


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker does with a job: the assessment's options, where results go, how long a lease lasts."""

    store: Path
    destination: Destination | None = None
    assess: AssessConfig = field(default_factory=AssessConfig)
    calling_ae: str = "BREASTSEG"
    lease_s: float = 30.0
    poll_s: float = 0.5
    #: a PET/CT lesion model (``petct train``): whole-body PET/CT studies are taken only with one
    petct_model: Path | None = None
    #: a DCE-MRI tumour model (``mri train``): MR studies are taken only with one
    mri_model: Path | None = None
    #: an ultrasound lesion model (``ultrasound train``, or the packaged one): US studies are taken only with one
    ultrasound_model: Path | None = None


def study_problem(folder: Path, config: WorkerConfig | None = None) -> str | None:
    """Why a received study cannot be taken (``None`` when it can): a workflow must take its series
    (:func:`~breastseg.service.routing.route_study`), and a whole-body PET/CT, an MRI or an ultrasound study needs
    its model configured."""
    try:
        route = route_study(folder)
    except BreastsegError as exc:
        return str(exc)
    if route.workflow == PETCT and (config is None or config.petct_model is None):
        return (
            f"a whole-body PET/CT study (CT field of view {route.field_of_view_mm or 0:.0f} mm > "
            f"{SPECIMEN_MAX_FOV_MM:.0f} mm): no PET/CT lesion model is configured (serve --petct-model)"
        )
    if route.workflow == MRI and (config is None or config.mri_model is None):
        return f"a DCE-MRI study ({route.phases} phases): no MRI tumour model is configured (serve --mri-model)"
    if route.workflow == ULTRASOUND and (config is None or config.ultrasound_model is None):
        images = sum(s.n_instances for s in route.series)
        return f"an ultrasound study ({images} images): no ultrasound model is configured (serve --ultrasound-model)"
    return None


def examine_quiet_studies(jobs: JobStore, config: WorkerConfig, quiet_s: float) -> list[int]:
    """Turn each study that has been quiet for ``quiet_s`` seconds into a job: queued when a workflow can take it
    (:func:`study_problem`), else rejected with the reason. Returns the new job ids."""
    created = []
    for study in jobs.quiet_studies(quiet_s):
        problem = study_problem(study_folder(config.store, study.study_uid), config)
        created.append(_examined(jobs, study, problem))
    return created


def _examined(jobs: JobStore, study: Study, problem: str | None) -> int:
    if problem is None:
        job_id = jobs.examined(study)
        LOG.info("study %s (patient %s): job %d queued", study.study_uid, study.patient_id, job_id)
    else:
        job_id = jobs.examined(study, "rejected", problem)
        LOG.warning("study %s (patient %s): job %d rejected: %s", study.study_uid, study.patient_id, job_id, problem)
    return job_id


class Worker:
    """Runs jobs from a :class:`JobStore` until told to stop."""

    def __init__(self, config: WorkerConfig, jobs: JobStore, name: str | None = None) -> None:
        self.config = config
        self.jobs = jobs
        self.name = name or worker_id()

    def _keep_lease(self, job: Job, done: threading.Event) -> None:
        while not done.wait(self.config.lease_s / 3):
            if not self.jobs.renew(job.id, self.name, self.config.lease_s):
                LOG.warning("job %d: lease lost", job.id)
                return

    def process(self, job: Job, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Assess, write and send one claimed job (the workflow :func:`route_study` says); returns its summary.
        Raises on failure."""
        cfg = self.config
        folder = study_folder(cfg.store, job.study_uid)
        route = route_study(folder)  # the watcher examined the series; the reader names any problem left
        out = result_folder(cfg.store, job.id)
        t0 = time.time()
        if route.workflow == PETCT:
            summary, files = self._petct(job, route, out, progress)
        elif route.workflow == MRI:
            summary, files = self._mri(route, out, progress)
        elif route.workflow == ULTRASOUND:
            summary, files = self._ultrasound(route, out)
        else:
            result = run_assessment(
                folder, folder, out / ASSESSMENT, cfg.assess, progress=progress, dicom_out=out / DICOM
            )
            summary = {
                "workflow": SPECIMEN,
                "margin_status": result.margin.status,
                "min_margin_mm": result.margin.min_margin_mm,
                "closest_face": result.margin.closest_face,
                "tumour_volume_ml": result.tumour_volume_ml,
                "method": result.method,
            }
            files = [out / DICOM / name for name in (SEG_NAME, SR_NAME, SC_NAME)]
        t1 = time.time()
        summary["assessment_s"] = round(t1 - t0, 3)
        summary["destination"] = str(cfg.destination) if cfg.destination else None
        if cfg.destination is not None:
            send_files(files, cfg.destination, cfg.calling_ae)
            sent = time.time()
            summary["send_s"] = round(sent - t1, 3)
            summary["sent_at"] = sent
            if job.last_received is not None:
                summary["last_file_to_sent_s"] = round(sent - job.last_received, 3)
        return summary

    def _petct(
        self, job: Job, route: Route, out: Path, progress: Callable[[str], None] | None
    ) -> tuple[dict[str, Any], list[Path]]:
        """A whole-body PET/CT study: lesions by the configured network, biomarkers, SEG + SR; the response to the
        patient's latest earlier PET/CT job that finished, when there is one."""
        from breastseg.workflows.petct.received import SCAN, assess_received_study

        cfg = self.config
        if cfg.petct_model is None:
            raise BreastsegError("a whole-body PET/CT study, and no PET/CT lesion model is configured")
        prior = self.prior_petct_job(job)
        prior_scan = None if prior is None else result_folder(cfg.store, prior.id) / PETCT_RESULTS / SCAN
        received = assess_received_study(
            route.ct_folder,
            route.pet_folder,
            _petct_model(cfg.petct_model),
            out / PETCT_RESULTS,
            out / DICOM,
            prior_scan=prior_scan,
            device="cpu",
            progress=progress,
        )
        summary = {"workflow": PETCT, "method": f"PET/CT network {cfg.petct_model.name}", **received.summary()}
        if prior is not None:
            summary["prior_job"] = prior.id
        # no lesion found: no SEG (a segmentation needs a segment), the SR says so
        written = [out / DICOM / name for name in (SEG_NAME, SR_NAME)]
        return summary, [f for f in written if f.is_file() or f.name == SR_NAME]

    def _mri(
        self, route: Route, out: Path, progress: Callable[[str], None] | None
    ) -> tuple[dict[str, Any], list[Path]]:
        """A DCE-MRI study: the tumour of its dynamic series by the configured network, SEG + SR + report on the
        first post-contrast phase."""
        from breastseg.workflows.mri.exam import read_dce_dicom
        from breastseg.workflows.mri.pipeline import model_name, segment_to_folder

        cfg = self.config
        if cfg.mri_model is None:
            raise BreastsegError("a DCE-MRI study, and no MRI tumour model is configured")
        model = _mri_model(cfg.mri_model)
        exam = read_dce_dicom(route.folders[0], route.series[0].series_uid)
        result = segment_to_folder(exam, model, out / MRI_RESULTS, device="cpu", progress=progress,
                                   dicom_out=out / DICOM)  # fmt: skip
        t = result.tumour
        summary = {
            "workflow": MRI,
            "method": f"MRI network {model_name(model)}",
            "tumour_found": result.tumour_found,
            "volume_ml": t.volume_ml,
            "longest_diameter_mm": t.longest_diameter_mm,
            "curve_type": t.curve_type,
            "functional_volume_ml": t.functional_volume_ml,
            "phases": route.phases,
        }
        written = [out / DICOM / name for name in (SEG_NAME, SR_NAME, SC_NAME)]
        return summary, [f for f in written if f.is_file()]

    def _ultrasound(self, route: Route, out: Path) -> tuple[dict[str, Any], list[Path]]:
        """An ultrasound study: every image's lesion by the configured network; per image a SEG (lesion found),
        an SR and the overlay as a secondary capture."""
        from breastseg.workflows.ultrasound.predict import predict_images, write_summary

        cfg = self.config
        if cfg.ultrasound_model is None:
            raise BreastsegError("an ultrasound study, and no ultrasound model is configured")
        model = _ultrasound_model(cfg.ultrasound_model)
        paths = sorted(f for s in route.series for f in s.files)
        results = predict_images(paths, model, out / ULTRASOUND_RESULTS, dicom_out=out / DICOM)
        write_summary(results, str(cfg.ultrasound_model), out / ULTRASOUND_RESULTS)
        found = [r for r in results if r.lesion_found]
        areas = [r.area_mm2 for r in found if r.area_mm2 is not None]
        summary = {
            "workflow": ULTRASOUND,
            "method": f"ultrasound network {cfg.ultrasound_model.name}",
            "images": len(results),
            "lesions_found": len(found),
            "largest_area_mm2": max(areas) if areas else None,
        }
        return summary, sorted((out / DICOM).glob("*.dcm"))

    def prior_petct_job(self, job: Job) -> Job | None:
        """The patient's earlier PET/CT: of the finished PET/CT jobs of other studies with this one's patient ID,
        the one acquired last before this study (by Study Date / Time in the received headers) — a study sent late
        is compared with the one before it, not with a later one; where a date is missing, the latest finished job.
        ``None`` without a patient ID or such a job, or when every such study was acquired after this one (this is
        the patient's baseline)."""
        study = self.jobs.study(job.study_uid)
        if study is None or not study.patient_id:
            return None
        candidates = []
        for other in self.jobs.jobs(limit=1000):  # newest first
            if other.id == job.id or other.state != "done" or other.study_uid == job.study_uid:
                continue
            if (other.summary or {}).get("workflow") != PETCT:
                continue
            earlier = self.jobs.study(other.study_uid)
            if earlier is not None and earlier.patient_id == study.patient_id:
                candidates.append(other)
        if not candidates:
            return None
        when = study_datetime(study_folder(self.config.store, job.study_uid))
        dated = [(study_datetime(study_folder(self.config.store, c.study_uid)), c) for c in candidates]
        if when is None or any(d is None for d, _ in dated):
            return candidates[0]
        before = [(d, c) for d, c in dated if d is not None and d < when]
        return max(before, key=lambda pair: pair[0])[1] if before else None  # the earliest: a baseline

    def _send_not_assessable(self, job: Job) -> None:
        """Send the "not assessable" SR the assessment wrote, so that the PACS shows it (best effort: the job's
        state is what counts)."""
        sr = result_folder(self.config.store, job.id) / DICOM / SR_NAME
        if self.config.destination is None or not sr.is_file():
            return
        try:
            send_files([sr], self.config.destination, self.config.calling_ae)
        except BreastsegError as exc:
            LOG.warning("job %d: the not-assessable SR was not sent: %s", job.id, exc)

    def run_one(self) -> Job | None:
        """Claim and run one job; returns it (as claimed) or ``None`` when the queue was empty."""
        job = self.jobs.claim(self.name, self.config.lease_s)
        if job is None:
            return None
        LOG.info("job %d (study %s): started by %s", job.id, job.study_uid, self.name)
        done = threading.Event()
        keeper = threading.Thread(target=self._keep_lease, args=(job, done), daemon=True)
        keeper.start()
        result_dir = str(result_folder(self.config.store, job.id))
        try:
            summary = self.process(job)
        except NotAssessable as exc:  # readable inputs without usable signal: a state of its own, never "negative"
            LOG.warning("job %d not assessable: %s", job.id, exc)
            self._send_not_assessable(job)
            self.jobs.fail(job.id, self.name, str(exc), result_dir, state="not assessable")
        except BreastsegError as exc:
            LOG.warning("job %d failed: %s", job.id, exc)
            self.jobs.fail(job.id, self.name, str(exc), result_dir)
        except Exception as exc:  # a bug: keep the service running, record it
            LOG.error("job %d failed unexpectedly:\n%s", job.id, traceback.format_exc())
            self.jobs.fail(job.id, self.name, f"unexpected error: {type(exc).__name__}: {exc}", result_dir)
        else:
            self.jobs.finish(job.id, self.name, result_dir, summary)
            LOG.info("job %d done: %s", job.id, summary.get("margin_status") or summary.get("percist") or "measured")
        finally:
            done.set()
        return job

    def run(self, stop: threading.Event) -> None:
        """Run jobs until ``stop`` is set (a job in progress is finished first)."""
        while not stop.is_set():
            if self.run_one() is None:
                stop.wait(self.config.poll_s)
