"""Whole-body PET/CT through the DICOM service with real peers (DCMTK storescu as the scanner, Orthanc as the PACS):
the study is routed by its CT's field of view, its lesions segmented by a trained network, and its biomarkers come
back to the PACS as SEG + SR, valid by dciodvfy and equal to what the job measured; the patient's follow-up study
is assessed against the baseline (a PERCIST category, or "not assessable" — never a guess). Without a PET/CT model
a whole-body study is rejected by name; a specimen-sized one still goes to the margin workflow."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from breastseg.cli.main import main
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom, write_specimen_dicom
from breastseg.service.jobstore import JobStore
from breastseg.service.receiver import ListenerConfig
from breastseg.service.routing import PETCT, SPECIMEN, SPECIMEN_MAX_FOV_MM, route_study
from breastseg.service.sender import Destination
from breastseg.service.server import DicomService, ServiceConfig
from breastseg.service.worker import WorkerConfig, study_problem
from tests.servers import Orthanc, dciodvfy, free_port, orthanc_server
from tests.service.test_dicom_service import SCANNER, _job_of, storescu, study_uid_of, wait_for
from tests.service.test_web import browse, web_server

TINY = ["--folds", "3", "--epochs", "2", "--patch", "32", "32", "32", "--filters", "4", "--patches-per-scan", "2"]
SMALL = ["--lesions", "3", "--ct-spacing-mm", "8", "--pet-spacing-mm", "10"]  # coarse: fewer files, seconds


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny PET/CT model trained on three phantom patients, and a fourth patient's baseline and follow-up as
    DICOM (never trained on)."""
    root = tmp_path_factory.mktemp("petct_service")
    lines = ["patient_id,baseline,followup"]
    for i in range(3):
        assert main(["phantom", "petct", "--out", str(root / f"p{i}"), "--seed", str(60 + i), *SMALL]) == 0
        lines.append(f"p{i},p{i}/baseline,p{i}/followup")
    (root / "patients.csv").write_text("\n".join(lines) + "\n")
    model = root / "model.pt"
    assert main(["petct", "train", "--patients", str(root / "patients.csv"), "--out", str(model), *TINY]) == 0
    new = root / "new"
    assert main(["phantom", "petct", "--out", str(new), "--seed", "70", "--response", "PMD", *SMALL, "--dicom"]) == 0
    return model, new


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    with orthanc_server(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


def test_studies_are_routed_by_the_cts_field_of_view(cohort: tuple[Path, Path], tmp_path: Path) -> None:
    _, new = cohort
    wholebody = route_study(new / "baseline" / "dicom")
    ct = sorted((new / "baseline" / "dicom" / "ct").glob("*.dcm"))
    first = pydicom.dcmread(ct[0], stop_before_pixels=True)
    # by hand: the phantom's CT is Rows × PixelSpacing wide and its slices span (n − 1) × the slice step, + 1 step
    in_plane = max(int(first.Rows) * float(first.PixelSpacing[0]), int(first.Columns) * float(first.PixelSpacing[1]))
    zs = sorted(float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in ct)
    span = zs[-1] - zs[0] + (zs[1] - zs[0])
    assert wholebody.field_of_view_mm == pytest.approx(max(in_plane, span))
    assert wholebody.workflow == PETCT and wholebody.field_of_view_mm > SPECIMEN_MAX_FOV_MM
    specimen = make_specimen_phantom(SpecimenPhantomConfig(seed=5, ct_spacing_mm=0.4, pet_spacing_mm=0.8))
    write_specimen_dicom(specimen, tmp_path / "spec")
    assert route_study(tmp_path / "spec").workflow == SPECIMEN
    # without a PET/CT model the whole-body study is refused by name, the specimen taken
    problem = study_problem(new / "baseline" / "dicom", WorkerConfig(tmp_path))
    assert problem is not None and "whole-body PET/CT" in problem and "--petct-model" in problem
    assert study_problem(tmp_path / "spec", WorkerConfig(tmp_path)) is None


def _results(pacs: Orthanc, study: str) -> list[dict]:
    found = [x for x in pacs.series_of_study(study) if x["MainDicomTags"]["Modality"] in ("SEG", "SR")]
    return found if len(found) == 2 else []


def _lesion_count_in_sr(path: Path) -> int:
    sr = pydicom.dcmread(path)
    counts = [
        float(item.MeasuredValueSequence[0].NumericValue)
        for group in sr.ContentSequence[-1].ContentSequence
        for item in group.ContentSequence
        if item.ValueType == "NUM" and item.ConceptNameCodeSequence[0].CodeValue == "lesion-count"
    ]
    assert len(counts) == 1
    return int(counts[0])


def test_a_wholebody_study_comes_back_with_its_biomarkers_and_the_followup_with_its_response(
    cohort: tuple[Path, Path], pacs: Orthanc, tmp_path: Path
) -> None:
    model, new = cohort
    store = tmp_path / "store"
    port = free_port()
    config = ServiceConfig(
        listener=ListenerConfig(store, port=port, allowed_aes=(SCANNER,)),
        worker=WorkerConfig(store, Destination.parse(pacs.node), petct_model=model),
        quiet_s=1.0,
        poll_s=0.2,
    )
    svc = DicomService(config, JobStore(store / "jobs.sqlite"))
    svc.start()
    try:
        jobs = []
        for timepoint in ("baseline", "followup"):
            folder = new / timepoint / "dicom"
            study = study_uid_of(folder / "pet")
            assert storescu(folder, port).returncode == 0
            job = wait_for(f"the {timepoint} job", lambda s=study: _job_of(svc.jobs, s, ("done", "failed")), 240)
            assert job.state == "done", job.error
            jobs.append(job)
            results = store / "results" / str(job.id) / "petct"
            rows = list(csv.DictReader((results / "lesions.csv").open()))
            measured = json.loads((results / "biomarkers.json").read_text())
            assert job.summary["workflow"] == PETCT and job.summary["lesion_count"] == len(rows)
            assert measured["lesion_count"] == len(rows) and (results / "mip.png").stat().st_size > 10_000
            # what reached the PACS: a SEG and an SR in the study, valid DICOM, the SR's count the job's
            series = wait_for("SEG and SR in Orthanc", lambda s=study: _results(pacs, s))
            assert sorted(x["MainDicomTags"]["Modality"] for x in series) == ["SEG", "SR"]
            for s in series:
                path = tmp_path / f"{timepoint}-{s['MainDicomTags']['Modality']}.dcm"
                path.write_bytes(pacs.file(s["Instances"][0]))
                out = subprocess.run([dciodvfy(), str(path)], capture_output=True, text=True, timeout=300)
                errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
                assert not errors, errors[:5]
            assert _lesion_count_in_sr(tmp_path / f"{timepoint}-SR.dcm") == len(rows)
        baseline, followup = jobs
        # the follow-up was assessed against the same patient's baseline: a category or "not assessable"
        assert "prior_job" not in baseline.summary and followup.summary["prior_job"] == baseline.id
        response = json.loads(
            (store / "results" / str(followup.id) / "petct" / "response" / "response.json").read_text()
        )
        assert followup.summary["percist"] == response["percist"]["category"]
        if not response["assessable"]:
            assert response["percist"]["category"] == "not assessable"
        assert response["percist"]["category"] in ("CMR", "PMR", "SMD", "PMD", "not assessable", "not evaluable")
        _the_viewer_shows_both_jobs(store, baseline.id, followup.id, response["percist"]["category"], tmp_path)
    finally:
        svc.stop()


def _the_viewer_shows_both_jobs(store: Path, baseline: int, followup: int, category: str, tmp_path: Path) -> None:
    """The web viewer's PET/CT pages in headless Chromium: the lesion table is lesions.csv, row for row; the
    follow-up's page carries the PERCIST category in large type and both MIPs; the job list says it."""
    with web_server(store) as url:
        for job_id in (baseline, followup):
            dom = browse(f"{url}/jobs/{job_id}", tmp_path / "x.png", dom=True)
            rows = list(csv.DictReader((store / "results" / str(job_id) / "petct" / "lesions.csv").open()))
            table = dom.split('id="lesions"')[1].split("</table>")[0]
            assert table.count("<tr>") == len(rows) + 1
            assert f"<td>{rows[0]['label']}</td><td>{rows[0]['site']}</td>" in table
            assert ('id="percist"' in dom) == (job_id == followup)
            mip = httpx.get(f"{url}/jobs/{job_id}/files/petct/mip.png")
            assert mip.status_code == 200 and mip.headers["content-type"] == "image/png"
        assert f">PERCIST {category}</div>" in browse(f"{url}/jobs/{followup}", tmp_path / "x.png", dom=True)
        assert f"PERCIST {category}" in httpx.get(url).text


def test_a_prior_acquired_later_gives_no_response_but_the_biomarkers_stand(
    cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    from breastseg.workflows.petct.network import PetctModel
    from breastseg.workflows.petct.received import SCAN, assess_received_study

    model_path, new = cohort
    model = PetctModel.load(model_path)
    later = route_study(new / "followup" / "dicom")
    assess_received_study(later.ct_folder, later.pet_folder, model, tmp_path / "f", tmp_path / "f_dicom", device="cpu")
    earlier = route_study(new / "baseline" / "dicom")
    received = assess_received_study(
        earlier.ct_folder, earlier.pet_folder, model, tmp_path / "b", tmp_path / "b_dicom",
        prior_scan=tmp_path / "f" / SCAN, device="cpu",
    )  # fmt: skip
    assert received.response is None and "not after the baseline" in str(received.response_problem)
    summary = received.summary()
    assert summary["response_problem"] == received.response_problem and "percist" not in summary
    assert (tmp_path / "b" / "biomarkers.json").is_file() and (tmp_path / "b_dicom" / "sr.dcm").is_file()
    assert not (tmp_path / "b" / "response").exists()


def test_the_prior_petct_study_is_the_one_acquired_last_before_this_one(tmp_path: Path) -> None:
    """Studies of one patient acquired in January, March and February, received in that order: February's
    prior is January's (not March's, the latest finished); January, received first, has none."""
    import datetime
    import time

    import numpy as np

    from breastseg.image import Image
    from breastseg.io.dicom_write import StudyIdentity, write_dicom_series
    from breastseg.service.layout import study_folder
    from breastseg.service.worker import Worker

    store = tmp_path / "store"
    jobs = JobStore(store / "jobs.sqlite")
    image = Image(np.ones((2, 3, 3), np.float32), (1.0, 1.0, 1.0), modality="CT")
    ids = {}
    for month in (1, 3, 2):
        study = StudyIdentity(patient_id="PT-7", study_datetime=datetime.datetime(2025, month, 10, 9, 30))
        write_dicom_series(image, study_folder(store, study.study_instance_uid) / "ct", study=study)
        jobs.file_received(study.study_instance_uid, "PT-7", "SCANNER", time.time() - 5)
        (queued,) = jobs.quiet_studies(1.0)
        ids[month] = jobs.examined(queued)
        claimed = jobs.claim("w", 30.0)
        assert claimed is not None and claimed.id == ids[month]
        jobs.finish(claimed.id, "w", None, {"workflow": "petct"})
    worker = Worker(WorkerConfig(store), jobs)
    by_id = {j.id: j for j in jobs.jobs()}
    prior = worker.prior_petct_job(by_id[ids[2]])
    assert prior is not None and prior.id == ids[1]
    later = worker.prior_petct_job(by_id[ids[3]])
    assert later is not None and later.id == ids[2]
    assert worker.prior_petct_job(by_id[ids[1]]) is None
