"""Regenerate the pictures of ``docs/gallery.md``: every workflow's report figure and the web viewer's pages, made
from the project's own phantoms (no dataset pixels) by the same functions the commands call.

Run: ``make gallery`` (or ``.venv/bin/python docs/gallery/make_gallery.py``); needs Chromium for the web pages
(``apt-get install chromium``), which are skipped with a message without it. About two minutes on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from breastseg.phantoms.dce import make_dce_phantom
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom, write_specimen_dicom
from breastseg.phantoms.wholebody import Response, WholeBodyPhantomConfig, make_wholebody_pair

HERE = Path(__file__).resolve().parent


def _save(image: PILImage.Image, name: str) -> None:
    """A gallery PNG with at most 256 colours (screenshots and figures stay a few hundred kB)."""
    image.convert("RGB").quantize(colors=256, method=PILImage.Quantize.MEDIANCUT).save(HERE / name, optimize=True)
    print(f"written docs/gallery/{name}")


def _copy(path: Path, name: str) -> None:
    _save(PILImage.open(path), name)


def specimen(work: Path) -> Path:
    """The specimen assessment of a phantom (threshold method, packaged model): its two figures and report."""
    from breastseg.phantoms.base import write_phantom
    from breastseg.workflows.specimen.pipeline import run_assessment

    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=0, margin_mm=1.5))
    folder = work / "specimen"
    write_phantom(ph, folder)
    out = work / "specimen_out"
    run_assessment(folder / "ct.nii.gz", folder / "pet.nii.gz", out, pet_info_path=folder / "truth.json")
    _copy(out / "figures" / "closest_point.png", "specimen_planes.png")
    _copy(out / "figures" / "surface_3d.png", "specimen_3d.png")
    return out / "report.html"


def petct(work: Path) -> None:
    """A whole-body phantom patient's MIP and response MIPs, on the phantom's reference lesion masks."""
    from breastseg.phantoms.base import write_phantom
    from breastseg.workflows.petct.longitudinal import measure_response
    from breastseg.workflows.petct.scan import measure_scan

    pair = make_wholebody_pair(WholeBodyPhantomConfig(seed=4, response=Response("PMD")))
    for timepoint, ph in pair.items():
        write_phantom(ph, work / "petct" / timepoint)
    base = work / "petct" / "baseline"
    measure_scan(base / "pet.nii.gz", base / "lesions.nii.gz", work / "petct_bio", pet_info=base / "truth.json")
    _copy(work / "petct_bio" / "mip.png", "petct_mip.png")
    measure_response(base, work / "petct" / "followup", work / "petct_response")
    _copy(work / "petct_response" / "mip.png", "petct_response.png")


def mri(work: Path) -> None:
    """The DCE-MRI report figure on a phantom breast with its reference tumour mask."""
    from breastseg.workflows.mri.figures import write_dce_report

    ph = make_dce_phantom()
    post = [ph.images[f"t1c_{k}"].array for k in range(1, 6)]
    write_dce_report(
        ph.images["t1"].array,
        post,
        ph.truth["post_times_s"],
        ph.images["tumour"].array > 0,
        ph.images["breast"].array > 0,
        ph.images["t1c_1"],
        work / "mri.png",
        title=f"reference tumour {ph.truth['tumour_volume_ml']:.2f} ml (phantom)",
        header="DCE phantom, seed 0",
    )
    _copy(work / "mri.png", "mri_report.png")


def _speckle(seed: int, lesion: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic speckle image (300 × 420 px) with a dark elliptic lesion, and the lesion's mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:300, :420]
    reference = (((yy - 150) / 48.0) ** 2 + ((xx - 200) / 70.0) ** 2 <= 1.0) & lesion
    shade = np.where(reference, 35.0, 110.0) + 25.0 * np.sin(yy / 23.0)
    return np.clip(shade * rng.rayleigh(1.0, yy.shape) / 1.25, 0, 255).astype(np.float32), reference


def ultrasound() -> None:
    """An evaluation overlay: a speckle image with a dark lesion, its reference and a shifted prediction."""
    from breastseg.workflows.ultrasound.predict import legend_overlay

    image, reference = _speckle(0)
    yy, xx = np.mgrid[:300, :420]
    prediction = ((yy - 146) / 46.0) ** 2 + ((xx - 212) / 66.0) ** 2 <= 1.0
    rgb, _ = legend_overlay(image, prediction, reference, note="synthetic speckle image")
    _save(PILImage.fromarray(rgb), "ultrasound_overlay.png")


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _shot(browser: str, url: str, name: str, work: Path, size: str = "1400,1500") -> None:
    path = work / name
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={size}"]
    args += ["--virtual-time-budget=8000", f"--user-data-dir={work / 'chromium-profile'}", f"--screenshot={path}", url]
    subprocess.run(args, capture_output=True, timeout=120, check=True)
    _save(PILImage.open(path), name)


def web(work: Path, report: Path) -> None:
    """The specimen report in the browser, and the viewer's job list and result page (PET fused at 50 %)."""
    import pydicom
    import uvicorn

    from breastseg.service.jobstore import JobStore
    from breastseg.service.layout import study_folder
    from breastseg.service.web import create_app
    from breastseg.service.worker import Worker, WorkerConfig

    browser = _chromium()
    if browser is None:
        print("Chromium not found (apt-get install chromium): the web pages are left as they are", file=sys.stderr)
        return
    _shot(browser, report.as_uri(), "specimen_report.png", work, "1300,1900")
    store = work / "store"
    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=7, ct_spacing_mm=0.4, pet_spacing_mm=0.8, margin_mm=1.5))
    folders = write_specimen_dicom(ph, work / "scan")
    uid = str(pydicom.dcmread(next(folders["ct"].glob("*.dcm"))).StudyInstanceUID)
    shutil.copytree(work / "scan", study_folder(store, uid))
    jobs = JobStore(store / "jobs.sqlite")
    jobs.file_received(uid, "BREASTSEG-PHANTOM", "SCANNER", time.time() - 5)
    (study,) = jobs.quiet_studies(1.0)
    job_id = jobs.examined(study)
    Worker(WorkerConfig(store), jobs).run_one()
    us_job = _ultrasound_job(store, jobs)
    petct_job = _reference_petct_job(store, jobs, work)
    mri_job = _reference_mri_job(store, jobs, work)
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=8791, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        _shot(browser, "http://127.0.0.1:8791/", "web_jobs.png", work, "1400,300")
        _shot(browser, f"http://127.0.0.1:8791/jobs/{job_id}?pet=50", "web_specimen.png", work, "1450,1350")
        _shot(browser, f"http://127.0.0.1:8791/jobs/{us_job}", "web_ultrasound.png", work, "1450,900")
        _shot(browser, f"http://127.0.0.1:8791/jobs/{petct_job}", "web_petct.png", work, "1450,1700")
        _shot(browser, f"http://127.0.0.1:8791/jobs/{mri_job}", "web_mri.png", work, "1450,1150")
    finally:
        server.should_exit = True
        thread.join(10)


def _ultrasound_job(store: Path, jobs: Any) -> int:
    """An ultrasound study of two speckle images (a lesion in the first) as a scanner sends it, predicted by the
    packaged model as the service does; returns its job."""
    from pydicom.uid import generate_uid

    from breastseg.io.dicom_write import StudyIdentity, write_ultrasound_image
    from breastseg.service.layout import study_folder
    from breastseg.service.worker import Worker, WorkerConfig
    from breastseg.workflows.ultrasound.model import default_model_path

    study = StudyIdentity(patient_id="US-PHANTOM", patient_name="Phantom^Ultrasound", accession_number="US-0001")
    series_uid = generate_uid()
    for i, lesion in enumerate((True, False)):
        image, _ = _speckle(10 + i, lesion)
        folder = study_folder(store, study.study_instance_uid) / "series"
        write_ultrasound_image(image.astype(np.uint8), folder / f"image{i + 1}.dcm", (0.1, 0.1), study=study,
                               series_uid=series_uid, instance_number=i + 1)  # fmt: skip
    jobs.file_received(study.study_instance_uid, study.patient_id, "SCANNER", time.time() - 5)
    (queued,) = jobs.quiet_studies(1.0)
    job_id = int(jobs.examined(queued))
    Worker(WorkerConfig(store, ultrasound_model=default_model_path()), jobs).run_one()
    return job_id


def _finished_job(store: Path, jobs: Any, folder: Path, summary: dict[str, Any]) -> int:
    """A job for the study whose DICOM is in ``folder`` (filed into the store as the listener does), finished with
    ``summary``; returns its id (its results are then written into ``results/ID``)."""
    import pydicom

    from breastseg.service.layout import study_folder

    uid = str(pydicom.dcmread(next(folder.rglob("*.dcm")), stop_before_pixels=True).StudyInstanceUID)
    shutil.copytree(folder, study_folder(store, uid))
    jobs.file_received(uid, "PHANTOM", "SCANNER", time.time() - 5)
    (queued,) = jobs.quiet_studies(1.0)
    job_id = int(jobs.examined(queued))
    claimed = jobs.claim("gallery", 60.0)
    assert claimed is not None and claimed.id == job_id
    jobs.finish(job_id, "gallery", str(store / "results" / str(job_id)), summary)
    return job_id


def _reference_petct_job(store: Path, jobs: Any, work: Path) -> int:
    """A whole-body follow-up study's page, measured on the phantom's reference lesion masks (no lesion model
    ships) against its baseline, as the service writes it."""
    from breastseg.phantoms.base import write_pet_ct_dicom
    from breastseg.workflows.petct.longitudinal import measure_response
    from breastseg.workflows.petct.scan import measure_scan

    pair = make_wholebody_pair(WholeBodyPhantomConfig(seed=4, response=Response("PMD")))
    write_pet_ct_dicom(pair["followup"], work / "petct_dicom", "Phantom^WholeBody", "CT phantom", "PET phantom")
    follow = work / "petct" / "followup"
    measured = work / "petct_job"
    measure_scan(follow / "pet.nii.gz", follow / "lesions.nii.gz", measured, pet_info=follow / "truth.json")
    response = measure_response(work / "petct" / "baseline", follow, measured / "response")
    bio = json.loads((measured / "biomarkers.json").read_text())
    summary = {"workflow": "petct", "method": "reference lesion masks (phantom)", "percist": response.percist.category,
               "lesion_count": bio["lesion_count"], "sul_peak": bio["sul_peak"]}  # fmt: skip
    job_id = _finished_job(store, jobs, work / "petct_dicom", summary)
    shutil.copytree(measured, store / "results" / str(job_id) / "petct")
    return job_id


def _reference_mri_job(store: Path, jobs: Any, work: Path) -> int:
    """A DCE-MRI study's page, with the phantom's reference tumour as the mask (no MRI model ships)."""
    from breastseg.io.dicom_write import StudyIdentity, write_dynamic_series
    from breastseg.workflows.mri.readouts import tumour_readout

    ph = make_dce_phantom()
    times = ph.truth["post_times_s"]
    phases = [ph.images["t1"]] + [ph.images[f"t1c_{k}"] for k in range(1, len(times) + 1)]
    study = StudyIdentity(patient_id="MR-PHANTOM", patient_name="Phantom^Breast", accession_number="MR-0001")
    write_dynamic_series(phases, [0.0, *times], work / "mri_dicom", study=study)
    tumour = ph.images["tumour"].array > 0
    readout = tumour_readout(tumour, ph.images["t1c_1"].spacing, phases[0].array, [p.array for p in phases[1:]])
    summary = {"workflow": "mri", "method": "reference tumour mask (phantom)", "tumour_found": True,
               **{k: v for k, v in readout.to_json().items() if k != "late_change_percent"}}  # fmt: skip
    job_id = _finished_job(store, jobs, work / "mri_dicom", summary)
    out = store / "results" / str(job_id) / "mri"
    out.mkdir(parents=True)
    shutil.copy(work / "mri.png", out / "report.png")
    doc = {"tumour": readout.to_json(), "tumour_found": True, "post_times_s": list(times)}
    (out / "result.json").write_text(json.dumps(doc))
    return job_id


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = specimen(work)
        petct(work)
        mri(work)
        ultrasound()
        web(work, report)


if __name__ == "__main__":
    main()
