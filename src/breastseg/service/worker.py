"""Workers: take a queued job, assess the specimen study, write the DICOM results, send them to the PACS.

A job's outputs go to ``STORE/results/<job id>/`` (``assessment/``: result.json, masks, report.html;
``dicom/``: seg.dcm, sr.dcm, report.dcm), each written atomically, so a worker killed mid-job leaves no half
result and the job simply runs again. While it works, a worker renews its job's lease; a failure is recorded
with its reason (``breastseg jobs show``) and can be retried.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breastseg.errors import BreastsegError
from breastseg.io.dicom import list_dicom_series
from breastseg.sanity import NotAssessable
from breastseg.service.jobstore import Job, JobStore, Study, worker_id
from breastseg.service.layout import ASSESSMENT, DICOM, result_folder, study_folder
from breastseg.service.sender import Destination, send_files
from breastseg.workflows.specimen.dicom_export import SC_NAME, SEG_NAME, SR_NAME
from breastseg.workflows.specimen.pipeline import AssessConfig, run_assessment

LOG = logging.getLogger("breastseg.service")


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker does with a job: the assessment's options, where results go, how long a lease lasts."""

    store: Path
    destination: Destination | None = None
    assess: AssessConfig = field(default_factory=AssessConfig)
    calling_ae: str = "BREASTSEG"
    lease_s: float = 30.0
    poll_s: float = 0.5


def study_problem(folder: Path) -> str | None:
    """Why a received study cannot be assessed as a specimen PET/CT (``None`` when it can): it needs one CT
    and one PET series."""
    if not folder.is_dir():
        return f"{folder}: no files received"
    try:
        series = list_dicom_series(folder)
    except BreastsegError as exc:
        return str(exc)
    modalities = [s.modality for s in series]
    have = ", ".join(f"{s.modality or '?'} ({s.n_instances} images)" for s in series) or "nothing"
    for needed, name in (("CT", "CT"), ("PT", "PET")):
        count = modalities.count(needed)
        if count == 0:
            return f"no {name} series in the study (received: {have})"
        if count > 1:
            return f"{count} {name} series in the study (received: {have}); send one"
    return None


def examine_quiet_studies(jobs: JobStore, store: Path, quiet_s: float) -> list[int]:
    """Turn each study that has been quiet for ``quiet_s`` seconds into a job: queued when it holds a CT and a
    PET series, else rejected with the reason. Returns the new job ids."""
    created = []
    for study in jobs.quiet_studies(quiet_s):
        problem = study_problem(study_folder(store, study.study_uid))
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
        """Assess, write and send one claimed job; returns its summary. Raises on failure."""
        cfg = self.config
        folder = study_folder(cfg.store, job.study_uid)
        if not folder.is_dir():  # the watcher examined the series; the reader names any problem left
            raise BreastsegError(f"{folder}: no files received")
        out = result_folder(cfg.store, job.id)
        t0 = time.time()
        result = run_assessment(folder, folder, out / ASSESSMENT, cfg.assess, progress=progress, dicom_out=out / DICOM)
        t1 = time.time()
        summary: dict[str, Any] = {
            "margin_status": result.margin.status,
            "min_margin_mm": result.margin.min_margin_mm,
            "closest_face": result.margin.closest_face,
            "tumour_volume_ml": result.tumour_volume_ml,
            "method": result.method,
            "assessment_s": round(t1 - t0, 3),
            "destination": str(cfg.destination) if cfg.destination else None,
        }
        if cfg.destination is not None:
            files = [out / DICOM / name for name in (SEG_NAME, SR_NAME, SC_NAME)]
            send_files(files, cfg.destination, cfg.calling_ae)
            sent = time.time()
            summary["send_s"] = round(sent - t1, 3)
            summary["sent_at"] = sent
            if job.last_received is not None:
                summary["last_file_to_sent_s"] = round(sent - job.last_received, 3)
        return summary

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
            LOG.info("job %d done: %s", job.id, summary["margin_status"])
        finally:
            done.set()
        return job

    def run(self, stop: threading.Event) -> None:
        """Run jobs until ``stop`` is set (a job in progress is finished first)."""
        while not stop.is_set():
            if self.run_one() is None:
                stop.wait(self.config.poll_s)
