"""``breastseg jobs`` and ``breastseg serve`` from the command line: list, show and retry jobs; refuse unsafe
set-ups; an address filter; an extra ``serve worker`` process sharing a PostgreSQL job store."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from breastseg.cli.main import main
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom, write_specimen_dicom
from breastseg.service.jobstore import JobStore
from breastseg.service.layout import study_folder
from breastseg.service.receiver import ListenerConfig, Receiver
from breastseg.service.worker import Worker, WorkerConfig
from tests.servers import dcmtk_tool, free_port, postgres_server


def test_jobs_list_show_retry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    jobs = JobStore(store / "jobs.sqlite")
    jobs.file_received("1.2.840.99", "P1", "SCANNER", time.time() - 5)
    (study,) = jobs.quiet_studies(1.0)
    job_id = jobs.examined(study)
    Worker(WorkerConfig(store), jobs).run_one()  # no files on disk: fails with the reason
    assert main(["jobs", "list", "--store", str(store)]) == 0
    listed = capsys.readouterr().out
    assert "failed" in listed and "1.2.8" in listed  # (rich shortens long UIDs in narrow terminals)
    assert main(["jobs", "show", str(job_id), "--store", str(store)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "failed" and "no files received" in shown["error"] and shown["attempts"] == 1
    assert main(["jobs", "retry", str(job_id), "--store", str(store)]) == 0
    assert jobs.job(job_id).state == "queued"  # type: ignore[union-attr]
    assert main(["jobs", "retry", str(job_id), "--store", str(store)]) == 2
    assert "only failed, not assessable or rejected jobs are retried" in capsys.readouterr().err


def test_unsafe_setups_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "dicom", "--store", str(tmp_path)]) == 2
    assert "--allow-ae" in capsys.readouterr().err
    assert main(["serve", "web", "--host", "0.0.0.0", "--store", str(tmp_path)]) == 2
    assert "--token" in capsys.readouterr().err
    assert main(["serve", "dicom", "--allow-any-ae", "--dest", "ORTHANC:4242", "--store", str(tmp_path)]) == 2
    assert "AET@host:port" in capsys.readouterr().err


def test_senders_outside_the_allowed_addresses_are_refused(tmp_path: Path) -> None:
    jobs = JobStore(tmp_path / "jobs.sqlite")
    port = free_port()
    receiver = Receiver(ListenerConfig(tmp_path, port=port, allowed_ips=("10.9.9.9",)), jobs)
    receiver.start()
    try:
        echo = subprocess.run(
            [dcmtk_tool("echoscu"), "-aet", "SCANNER", "-aec", "BREASTSEG", "127.0.0.1", str(port)],
            capture_output=True,
            timeout=30,
        )
    finally:
        receiver.stop()
    assert echo.returncode != 0
    assert any(kind == "rejected-address" and "127.0.0.1" in msg for _, kind, _, msg in jobs.events())


def test_an_extra_worker_process_shares_a_postgresql_job_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=8, ct_spacing_mm=0.4, pet_spacing_mm=0.8, margin_mm=2.0))
    folders = write_specimen_dicom(ph, tmp_path / "scan")
    study_uid = str(pydicom.dcmread(next(folders["ct"].glob("*.dcm"))).StudyInstanceUID)
    shutil.copytree(tmp_path / "scan", study_folder(store, study_uid))
    with postgres_server(tmp_path / "pg") as url:
        jobs = JobStore(url)
        jobs.file_received(study_uid, "PHANTOM-8", "SCANNER", time.time() - 5)
        (study,) = jobs.quiet_studies(1.0)
        job_id = jobs.examined(study)
        worker = subprocess.Popen(
            [sys.executable, "-m", "breastseg", "serve", "worker", "--store", str(store), "--db", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        try:
            deadline = time.monotonic() + 120
            while (job := jobs.job(job_id)) is not None and job.state in ("queued", "running"):
                assert time.monotonic() < deadline, "the worker process did not finish the job"
                time.sleep(0.2)
        finally:
            worker.send_signal(signal.SIGTERM)
            out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0, out.decode()[-2000:]
        done = jobs.job(job_id)
        jobs.close()
    assert done is not None and done.state == "done", done
    assert done.worker is not None and done.worker.endswith(f":{worker.pid}")
    assert done.summary is not None and done.summary["margin_status"] == ph.truth["margin_status"]
    assert (store / "results" / str(job_id) / "dicom" / "sr.dcm").is_file()
