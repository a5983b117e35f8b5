"""The service refuses what it cannot assess: pixel-less instances and misaddressed associations at the door, a
PET without uptake as a "not assessable" job (listed, shown and retryable), and no traceback from the web app."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from breastseg.cli.main import main
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom, write_specimen_dicom
from breastseg.service.jobstore import JobStore
from breastseg.service.layout import study_folder
from breastseg.service.receiver import DATA_SET_MISMATCH, ListenerConfig, Receiver
from breastseg.service.web import create_app
from breastseg.service.worker import Worker, WorkerConfig
from tests.servers import free_port


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=9, ct_spacing_mm=0.4, pet_spacing_mm=0.8, margin_mm=1.5))
    return write_specimen_dicom(ph, tmp_path_factory.mktemp("scan") / "dicom")


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[Receiver, JobStore, int]]:
    jobs = JobStore(tmp_path / "jobs.sqlite")
    port = free_port()
    receiver = Receiver(ListenerConfig(tmp_path / "store", port=port, allowed_aes=("SCANNER",)), jobs)
    receiver.start()
    yield receiver, jobs, port
    receiver.stop()


def _store(ds: pydicom.Dataset, port: int, called: str = "BREASTSEG") -> int | None:
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return None
    status = assoc.send_c_store(ds)
    assoc.release()
    return int(status.Status)


def test_an_image_without_pixel_data_is_refused_at_the_door(
    listener: tuple[Receiver, JobStore, int], scan: dict[str, Path]
) -> None:
    receiver, jobs, port = listener
    ds = pydicom.dcmread(next(scan["ct"].glob("*.dcm")))
    del ds.PixelData
    assert _store(ds, port) == DATA_SET_MISMATCH
    assert any(e[1] == "malformed-file" and "no pixel data" in e[3] for e in jobs.events())
    assert not study_folder(receiver.config.store, str(ds.StudyInstanceUID)).exists()


def test_an_association_for_another_called_ae_title_is_rejected(
    listener: tuple[Receiver, JobStore, int], scan: dict[str, Path]
) -> None:
    _receiver, jobs, port = listener
    ds = pydicom.dcmread(next(scan["ct"].glob("*.dcm")))
    assert _store(ds, port, called="OTHER_PACS") is None
    deadline = time.monotonic() + 10
    while not any("called AE title 'OTHER_PACS'" in e[3] for e in jobs.events()):
        assert time.monotonic() < deadline, jobs.events()
        time.sleep(0.05)
    assert _store(ds, port) == 0  # the right called AE title is served


@pytest.fixture(scope="module")
def store(scan: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A store with one study whose PET shows uptake only in a corner of its field of view, far from the tissue."""
    root = tmp_path_factory.mktemp("store")
    pet = root / "pet"
    shutil.copytree(scan["pet"], pet)
    for k, f in enumerate(sorted(pet.glob("*.dcm"))):
        ds = pydicom.dcmread(f)
        values = np.zeros((ds.Rows, ds.Columns), np.int16)
        if k == 0:
            values[0, 0] = 30000
        ds.PixelData = values.tobytes()
        ds.save_as(f)
    study_uid = str(pydicom.dcmread(next(pet.glob("*.dcm"))).StudyInstanceUID)
    target = study_folder(root / "store", study_uid)
    shutil.copytree(scan["ct"], target / "ct")
    shutil.copytree(pet, target / "pet")
    jobs = JobStore(root / "store" / "jobs.sqlite")
    jobs.file_received(study_uid, "PHANTOM-9", "SCANNER", time.time() - 5)
    (study,) = jobs.quiet_studies(1.0)
    job_id = jobs.examined(study)
    Worker(WorkerConfig(root / "store"), jobs).run_one()
    return root / "store", job_id


def test_a_pet_without_uptake_is_a_not_assessable_job(store: tuple[Path, int], capsys: pytest.CaptureFixture) -> None:
    root, job_id = store
    jobs = JobStore(root / "jobs.sqlite")
    job = jobs.job(job_id)
    assert job is not None and job.state == "not assessable"
    assert "no signal in the specimen tissue" in str(job.error)
    assert not (root / "results" / str(job_id) / "assessment" / "result.json").exists()
    dicom = root / "results" / str(job_id) / "dicom"
    assert sorted(p.name for p in dicom.iterdir()) == ["sr.dcm"]  # no SEG, no figure: nothing was segmented
    assert _margin_status_codes(dicom / "sr.dcm") == ["373068000"]  # SCT "Undetermined", never Negative
    assert main(["jobs", "list", "--store", str(root), "--state", "not assessable"]) == 0
    assert "not assessable" in capsys.readouterr().out
    page = TestClient(create_app(root)).get(f"/jobs/{job_id}")
    assert page.status_code == 200 and "NOT ASSESSABLE" in page.text and "NEGATIVE" not in page.text
    assert jobs.retry(job_id).state == "queued"


def _margin_status_codes(sr: Path) -> list[str]:
    """The coded values of every "Tumor margin status" (SCT 372249001) item in an SR."""
    found: list[str] = []

    def walk(items: pydicom.Sequence) -> None:
        for item in items:
            name = item.get("ConceptNameCodeSequence")
            if name and name[0].CodeValue == "372249001" and "ConceptCodeSequence" in item:
                found.append(str(item.ConceptCodeSequence[0].CodeValue))
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(pydicom.dcmread(sr).ContentSequence)
    return found


def test_the_web_app_answers_json_never_a_traceback(store: tuple[Path, int], tmp_path: Path) -> None:
    root, job_id = store
    client = TestClient(create_app(root), raise_server_exceptions=False)
    too_large = client.get(f"/api/jobs/{2**70}")
    assert too_large.status_code == 422 and "detail" in too_large.json()
    assert client.get("/api/jobs/12345").status_code == 404
    broken = tmp_path / "broken-store"
    shutil.copytree(root, broken)
    jobs = JobStore(broken / "jobs.sqlite")
    with jobs._cursor() as cur:  # a done job whose result file is not JSON: a bug the app must not expose
        cur.execute("UPDATE jobs SET state = 'done', summary = ? WHERE id = ?", (json.dumps({}), job_id))
    result = broken / "results" / str(job_id) / "assessment" / "result.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text("{not json")
    answer = TestClient(create_app(broken), raise_server_exceptions=False).get(f"/api/jobs/{job_id}")
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("application/json")
    assert "Traceback" not in answer.text and "internal error (JSONDecodeError)" in answer.json()["detail"]
