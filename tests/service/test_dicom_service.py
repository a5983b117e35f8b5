"""The DICOM service end to end with real peers: DCMTK's storescu plays the scanner, a real Orthanc is the PACS.

A phantom specimen study goes in; SEG + SR + the report come back into Orthanc, valid by dciodvfy and carrying
the phantom's true margin status. Refused and recorded with their reasons, while the service keeps serving: an
unknown calling AE, an instance without its UIDs, a CT without PET, a CT with truncated pixel data. Killed
mid-job, a restarted service finishes the job and nothing received is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from breastseg.phantoms.base import Phantom
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom, write_specimen_dicom
from breastseg.service.jobstore import Job, JobStore
from breastseg.service.receiver import ListenerConfig
from breastseg.service.sender import Destination
from breastseg.service.server import DicomService, ServiceConfig
from breastseg.service.worker import WorkerConfig
from tests.servers import Orthanc, dciodvfy, dcmtk_tool, free_port, orthanc_server

SCANNER = "SCANNER"


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def storescu(folder: Path, port: int, aet: str = SCANNER) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [dcmtk_tool("storescu"), "-aet", aet, "-aec", "BREASTSEG", "127.0.0.1", str(port), "+sd", "+r", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def study_uid_of(folder: Path) -> str:
    return str(pydicom.dcmread(next(folder.rglob("*.dcm")), stop_before_pixels=True).StudyInstanceUID)


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    with orthanc_server(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    # 1.5 mm margin: negative; small grid so that a job takes seconds
    return make_specimen_phantom(SpecimenPhantomConfig(seed=5, ct_spacing_mm=0.4, pet_spacing_mm=0.8, margin_mm=1.5))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, pacs: Orthanc) -> Iterator[tuple[DicomService, int, Path]]:
    store = tmp_path_factory.mktemp("store")
    port = free_port()
    config = ServiceConfig(
        listener=ListenerConfig(store, port=port, allowed_aes=(SCANNER,)),
        worker=WorkerConfig(store, Destination.parse(pacs.node)),
        quiet_s=1.0,
        poll_s=0.2,
    )
    svc = DicomService(config, JobStore(store / "jobs.sqlite"))
    svc.start()
    try:
        yield svc, port, store
    finally:
        svc.stop()


def _job_of(jobs: JobStore, study_uid: str, states: tuple[str, ...]) -> Job | None:
    found = [j for j in jobs.jobs(limit=100) if j.study_uid == study_uid and j.state in states]
    return found[0] if found else None


def test_a_specimen_study_comes_back_to_the_pacs_as_seg_sr_and_report(
    service: tuple[DicomService, int, Path], pacs: Orthanc, phantom: Phantom, tmp_path: Path
) -> None:
    svc, port, store = service
    folders = write_specimen_dicom(phantom, tmp_path / "scan")
    study = study_uid_of(folders["ct"])
    sent = storescu(tmp_path / "scan", port)
    assert sent.returncode == 0, sent.stderr
    job = wait_for("the job", lambda: _job_of(svc.jobs, study, ("done", "failed")))
    assert job.state == "done", job.error
    assert job.summary["margin_status"] == phantom.truth["margin_status"] == "negative"
    assert 0.0 < job.summary["last_file_to_sent_s"] < 60.0
    series = wait_for("SEG, SR and report in Orthanc", lambda: _results_in(pacs, study))
    assert {s["MainDicomTags"]["Modality"] for s in series} >= {"SEG", "SR"}
    assert len(series) == 3
    for s in series:  # what Orthanc stored is valid DICOM
        data = pacs.file(s["Instances"][0])
        path = tmp_path / f"{s['MainDicomTags']['Modality']}.dcm"
        path.write_bytes(data)
        out = subprocess.run([dciodvfy(), str(path)], capture_output=True, text=True, timeout=120)
        errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
        assert not errors, out.stdout + out.stderr
    sr = pydicom.dcmread(tmp_path / "SR.dcm")
    distances = [
        [
            float(item.MeasuredValueSequence[0].NumericValue)
            for item in group.ContentSequence
            if item.ValueType == "NUM" and item.ConceptNameCodeSequence[0].CodeValue == "121206"
        ]
        for group in sr.ContentSequence[-1].ContentSequence
    ]
    tumour, _specimen, per_face, _closest = distances
    assert tumour == [pytest.approx(job.summary["min_margin_mm"])]  # the margin, in the tumour's group
    # each face's margin is measured from its surface voxels: the closest face's lies within a voxel of it
    voxel_mm = float(np.linalg.norm(phantom.images["ct"].spacing))
    assert len(per_face) == 6 and abs(min(per_face) - job.summary["min_margin_mm"]) <= voxel_mm
    # every received file is on disk under its UIDs, nothing left half-written
    received = list((store / "studies" / study).rglob("*.dcm"))
    assert len(received) == len(list((tmp_path / "scan").rglob("*.dcm")))
    assert not list((store / "incoming").iterdir())


def _results_in(pacs: Orthanc, study: str) -> list[dict[str, Any]]:
    series = [s for s in pacs.series_of_study(study) if s["MainDicomTags"].get("Modality") not in ("CT", "PT")]
    return series if len(series) >= 3 else []


def test_refused_input_is_recorded_and_the_service_keeps_serving(
    service: tuple[DicomService, int, Path], phantom: Phantom, tmp_path: Path
) -> None:
    svc, port, store = service
    folders = write_specimen_dicom(phantom, tmp_path / "scan")
    # 1. an unknown calling AE: association rejected, nothing stored
    intruder = storescu(folders["ct"], port, aet="INTRUDER")
    assert intruder.returncode != 0
    wait_for("the rejection event", lambda: any("INTRUDER" in e[3] for e in svc.jobs.events()))
    assert not (store / "studies" / study_uid_of(folders["ct"])).exists()
    # 2. an instance without its Study Instance UID: refused with 0xC000
    ds = pydicom.dcmread(next(folders["ct"].glob("*.dcm")))
    del ds.StudyInstanceUID
    ae = AE(ae_title=SCANNER)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="BREASTSEG")
    assert assoc.is_established
    status = assoc.send_c_store(ds)
    assoc.release()
    assert int(status.Status) == 0xC000
    assert any(e[1] == "malformed-file" and "Study/Series/SOP" in e[3] for e in svc.jobs.events())
    # 3. a CT without PET: the job is rejected with the reason
    assert storescu(folders["ct"], port).returncode == 0
    study = study_uid_of(folders["ct"])
    job = wait_for("the rejected job", lambda: _job_of(svc.jobs, study, ("rejected",)))
    assert "no PET series" in str(job.error) and "CT (" in str(job.error)
    # 4. a CT slice with truncated pixel data (another study): the job fails, naming the file
    other = write_specimen_dicom(phantom, tmp_path / "broken")
    victim = sorted(other["ct"].glob("*.dcm"))[5]
    bad = pydicom.dcmread(victim)
    bad.PixelData = bad.PixelData[: len(bad.PixelData) // 2]
    bad.save_as(victim)
    assert storescu(tmp_path / "broken", port).returncode == 0
    broken = study_uid_of(other["ct"])
    job = wait_for("the failed job", lambda: _job_of(svc.jobs, broken, ("failed", "done")))
    assert job.state == "failed"
    assert f"{bad.SOPInstanceUID}.dcm" in str(job.error) and "pixel" in str(job.error).lower()
    # the service still serves: the first study, now with its PET, is assessed
    assert storescu(folders["pet"], port).returncode == 0
    job = wait_for("the completed study", lambda: _job_of(svc.jobs, study, ("done", "failed")))
    assert job.state == "done", job.error


def _sqlite_job(db: Path, study: str) -> tuple[str, int] | None:
    if not db.exists():
        return None
    with sqlite3.connect(db, timeout=10) as conn:
        row = conn.execute("SELECT state, attempts FROM jobs WHERE study_uid = ?", (study,)).fetchone()
    return (str(row[0]), int(row[1])) if row else None


def _serve(store: Path, port: int, pacs: Orthanc) -> subprocess.Popen[bytes]:
    args = ["serve", "dicom", "--port", str(port), "--allow-ae", SCANNER, "--dest", pacs.node]
    args += ["--store", str(store), "--quiet", "1"]
    log = (store.parent / f"service-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "breastseg", *args], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
    )


def test_a_killed_service_resumes_its_job_and_loses_nothing(pacs: Orthanc, phantom: Phantom, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    port = free_port()
    folders = write_specimen_dicom(phantom, tmp_path / "scan")
    study = study_uid_of(folders["ct"])
    proc = _serve(store, port, pacs)
    try:
        wait_for("the listener", lambda: storescu_echo(port), timeout_s=60)
        assert storescu(tmp_path / "scan", port).returncode == 0
        db = store / "jobs.sqlite"
        wait_for("the job to start", lambda: (_sqlite_job(db, study) or ("",))[0] == "running")
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean-up: as a power cut would
        proc.wait(30)
    assert _sqlite_job(db, study) == ("running", 1)
    sent = len(list((tmp_path / "scan").rglob("*.dcm")))
    assert len(list((store / "studies" / study).rglob("*.dcm"))) == sent
    proc = _serve(store, port, pacs)
    try:
        wait_for("the resumed job", lambda: (_sqlite_job(db, study) or ("",))[0] in ("done", "failed"))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0  # a clean stop on SIGTERM
    assert _sqlite_job(db, study) == ("done", 2)
    assert len(wait_for("the results in Orthanc", lambda: _results_in(pacs, study))) == 3
    assert len(list((store / "studies" / study).rglob("*.dcm"))) == sent


def storescu_echo(port: int) -> bool:
    out = subprocess.run(
        [dcmtk_tool("echoscu"), "-aet", SCANNER, "-aec", "BREASTSEG", "127.0.0.1", str(port)],
        capture_output=True,
        timeout=30,
    )
    return out.returncode == 0
