"""The web viewer in a real browser (headless Chromium) and over HTTP: the result page shows the margin status in
large type, the margin and three slices with the true mask outlines; tokens are enforced; DICOM-derived strings
are escaped, never run; only the listed files are served."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image as PILImage
from skimage.segmentation import find_boundaries

from breastseg.io import read_image
from breastseg.phantoms.specimen import SpecimenPhantomConfig, make_specimen_phantom, write_specimen_dicom
from breastseg.service.jobstore import JobStore
from breastseg.service.layout import study_folder
from breastseg.service.web import create_app
from breastseg.service.worker import Worker, WorkerConfig
from tests.servers import apt_install, free_port

TOKEN = "s3cret-token"
XSS = "<img src=x onerror=\"document.title='pwned'\">"
ORANGE = (255, 140, 0)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return str(shutil.which(name))
    apt_install("chromium")
    if not shutil.which("chromium"):
        pytest.skip("Chromium not found and could not be installed (apt-get install chromium)")
    return str(shutil.which("chromium"))


def browse(url: str, out: Path, *, dom: bool = False) -> str:
    """Load ``url`` in headless Chromium: its DOM after scripts ran (``dom``), or a screenshot to ``out``."""
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1300,1000"]
    args += ["--virtual-time-budget=8000", f"--user-data-dir={out.parent / 'chromium-profile'}"]
    args += ["--dump-dom", url] if dom else [f"--screenshot={out}", url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A store with one assessed specimen study (job 1) and one rejected study whose strings carry markup."""
    root = tmp_path_factory.mktemp("web")
    store = root / "store"
    ph = make_specimen_phantom(SpecimenPhantomConfig(seed=7, ct_spacing_mm=0.4, pet_spacing_mm=0.8, margin_mm=1.5))
    folders = write_specimen_dicom(ph, root / "scan")
    import pydicom

    study_uid = str(pydicom.dcmread(next(folders["ct"].glob("*.dcm"))).StudyInstanceUID)
    shutil.copytree(root / "scan", study_folder(store, study_uid))
    jobs = JobStore(store / "jobs.sqlite")
    jobs.file_received(study_uid, "PHANTOM-7", "SCANNER", time.time() - 5)
    (study,) = jobs.quiet_studies(1.0)
    job_id = jobs.examined(study)
    Worker(WorkerConfig(store), jobs).run_one()
    assert jobs.job(job_id).state == "done"  # type: ignore[union-attr]
    jobs.file_received("1.2.3.4", f"<script>{XSS}</script>", "SCANNER", time.time() - 5)
    (bad,) = jobs.quiet_studies(1.0)
    jobs.examined(bad, "rejected", f"no PET series in the study (received: {XSS})")
    return store, job_id


@contextlib.contextmanager
def web_server(store: Path, token: str | None = None) -> Iterator[str]:
    """``serve web`` on the store, on a free port of this machine, in a thread; yields its URL."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(store, token=token), host="127.0.0.1", port=port,
                                        log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server(store: tuple[Path, int]) -> Iterator[str]:
    with web_server(store[0], TOKEN) as url:
        yield url


def test_tokens_are_required_and_only_listed_files_are_served(server: str, store: tuple[Path, int]) -> None:
    _, job_id = store
    assert httpx.get(f"{server}/api/jobs").status_code == 401
    assert httpx.get(f"{server}/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = httpx.get(f"{server}/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and {j["state"] for j in ok.json()} == {"done", "rejected"}
    with httpx.Client(base_url=server) as browser:  # ?token= once, then the cookie
        assert browser.get("/", params={"token": TOKEN}).status_code == 200
        assert browser.get(f"/jobs/{job_id}").status_code == 200
        sr = browser.get(f"/jobs/{job_id}/files/dicom/sr.dcm")
        assert sr.status_code == 200 and sr.content[128:132] == b"DICM"
        for sneaky in ("../../jobs.sqlite", "..%2F..%2Fjobs.sqlite", "assessment%2F..%2F..%2F..%2Fjobs.sqlite"):
            got = browser.get(f"/jobs/{job_id}/files/{sneaky}")
            assert got.status_code in (404, 422) and b"SQLite format" not in got.content
        assert browser.get(f"/jobs/{job_id}/files/assessment/config.json").status_code == 404


def test_slice_images_outline_the_saved_tumour_mask(server: str, store: tuple[Path, int]) -> None:
    root, job_id = store
    tumour = read_image(root / "results" / str(job_id) / "assessment" / "tumour_mask.nii.gz").array > 0
    k = int(np.argmax(tumour.sum(axis=(1, 2))))  # the axial slice with the most tumour
    got = httpx.get(f"{server}/jobs/{job_id}/slices/axial/{k}.png", headers={"Authorization": f"Bearer {TOKEN}"})
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    rgb = np.asarray(PILImage.open(io.BytesIO(got.content)).convert("RGB"))
    assert rgb.shape[:2] == tumour.shape[1:]  # isotropic in-plane: one pixel per voxel
    orange = np.all(rgb == ORANGE, axis=-1)
    # an independent outline: scikit-image's inner boundary, 4-connected
    np.testing.assert_array_equal(orange, find_boundaries(tumour[k], mode="inner", connectivity=1))
    outside = httpx.get(f"{server}/jobs/{job_id}/slices/axial/9999.png", headers={"Authorization": f"Bearer {TOKEN}"})
    assert outside.status_code == 404 and "outside" in outside.text


def test_result_page_in_chromium_shows_status_margin_and_slices(
    server: str, store: tuple[Path, int], tmp_path: Path
) -> None:
    root, job_id = store
    job = JobStore(root / "jobs.sqlite").job(job_id)
    assert job is not None and job.summary is not None
    status = job.summary["margin_status"]
    dom = browse(f"{server}/jobs/{job_id}?token={TOKEN}", tmp_path / "x.png", dom=True)
    assert f">{status.upper()}</div>" in dom
    assert f"{job.summary['min_margin_mm']:.2f} mm" in dom
    assert dom.count('data-view="') == 3 and 'id="pet-opacity"' in dom  # a slider per plane, one for the PET
    shot = tmp_path / "page.png"  # (kept by pytest under its basetemp for a look)
    browse(f"{server}/jobs/{job_id}?token={TOKEN}", shot)
    rgb = np.asarray(PILImage.open(shot).convert("RGB"))
    banner = {"negative": (26, 127, 55), "positive": (198, 40, 40)}[status]
    assert np.all(rgb == banner, axis=-1).sum() > 50_000  # the status in large type on its colour
    assert np.all(rgb == ORANGE, axis=-1).sum() > 50  # the slices loaded, with the tumour outlined


def test_dicom_strings_are_shown_not_run(server: str, tmp_path: Path) -> None:
    dom = browse(f"{server}/?token={TOKEN}", tmp_path / "x.png", dom=True)
    assert "<title>breastseg jobs</title>" in dom  # the onerror never ran
    assert "&lt;img src=x onerror=" in dom and '<img src="x"' not in dom
    rejected = browse(f"{server}/jobs/2?token={TOKEN}", tmp_path / "y.png", dom=True)
    assert "&lt;script&gt;" in rejected and "pwned" not in rejected.split("<title>")[1].split("</title>")[0]


def _get(server: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server}{path}", params=params, headers={"Authorization": f"Bearer {TOKEN}"})


def _slice(server: str, job_id: int, view: str, k: int, **params: str) -> np.ndarray:
    got = _get(server, f"/jobs/{job_id}/slices/{view}/{k}.png", **params)
    assert got.status_code == 200, got.text
    return np.asarray(PILImage.open(io.BytesIO(got.content)).convert("RGB")).astype(int)


def test_the_job_list_names_patient_accession_date_and_method(server: str, store: tuple[Path, int]) -> None:
    import pydicom

    root, job_id = store
    job = JobStore(root / "jobs.sqlite").job(job_id)
    assert job is not None
    header = pydicom.dcmread(next((root / "studies").rglob("*.dcm")), stop_before_pixels=True)
    page = _get(server, "/").text
    row = next(r for r in page.split("<tr>") if f'href="/jobs/{job_id}"' in r)
    assert f"<td>{header.PatientID}</td>" in row and f"<td>{header.AccessionNumber}</td>" in row
    date = str(header.StudyDate)
    assert f"<td>{date[:4]}-{date[4:6]}-{date[6:8]}</td>" in row and "<td>threshold</td>" in row
    # the long study UID is a tooltip, not a column
    assert f"<td>{job.study_uid}</td>" not in row and f"title='study {job.study_uid}'" in row


def test_the_report_opens_in_the_browser_and_dicom_downloads(server: str, store: tuple[Path, int]) -> None:
    _, job_id = store
    report = _get(server, f"/jobs/{job_id}/files/assessment/report.html")
    assert report.headers["content-type"].startswith("text/html")
    assert report.headers["content-disposition"].startswith("inline")
    figure = _get(server, f"/jobs/{job_id}/files/assessment/figures/surface_3d.png")
    assert figure.status_code == 200 and figure.headers["content-disposition"].startswith("inline")
    seg = _get(server, f"/jobs/{job_id}/files/dicom/seg.dcm")
    assert seg.headers["content-disposition"].startswith("attachment")


def test_window_presets_crosshair_and_pet_fusion_on_the_slices(server: str, store: tuple[Path, int]) -> None:
    root, job_id = store
    ct = read_image(root / "studies" / JobStore(root / "jobs.sqlite").job(job_id).study_uid, modality="CT")  # type: ignore[union-attr]
    tumour = read_image(root / "results" / str(job_id) / "assessment" / "tumour_mask.nii.gz").array > 0
    k = int(np.argmax(tumour.sum(axis=(1, 2))))
    plain = _slice(server, job_id, "axial", k)
    soft = _slice(server, job_id, "axial", k, wl="40,400")
    # by hand: grey = (HU − (level − width/2)) / width × 255, clipped, on a voxel away from every outline
    hu = np.asarray(ct.array[k], float)
    y, x = np.argwhere(tumour[k])[len(np.argwhere(tumour[k])) // 2]
    for image, (lo, hi) in ((plain, (-300.0, 300.0)), (soft, (-160.0, 240.0))):
        expected = np.clip((hu[y, x] - lo) / (hi - lo) * 255.0, 0, 255)
        assert abs(image[y, x, 0] - expected) <= 1
    assert _get(server, f"/jobs/{job_id}/slices/axial/{k}.png", wl="40,-1").status_code == 422
    # a crosshair through (k, 10, 12): green along row 10 and column 12, open around the point
    crossed = _slice(server, job_id, "axial", k, cross=f"{k},10,12")
    green = np.all(crossed == (0, 255, 0), axis=-1)
    assert green[10, :3].all() and green[:3, 12].all() and not green[10, 12]
    assert not np.all(plain == (0, 255, 0), axis=-1).any()
    # the PET fused at 60 %: hot (red over blue) inside the tumour, where the PET is brightest; the CT alone where
    # the PET is background (air outside the specimen)
    fused = _slice(server, job_id, "axial", k, pet="0.6")
    inside = tumour[k] & ~find_boundaries(tumour[k], mode="inner", connectivity=1)
    assert (fused[inside][:, 0] - fused[inside][:, 2]).mean() > 60
    assert np.array_equal(fused[:2, :2], plain[:2, :2])
    assert _get(server, f"/jobs/{job_id}/slices/axial/{k}.png", pet="1.5").status_code == 422


def test_result_page_has_directions_presets_and_the_faces(server: str, store: tuple[Path, int], tmp_path: Path) -> None:
    import json

    root, job_id = store
    result = json.loads((root / "results" / str(job_id) / "assessment" / "result.json").read_text())
    dom = browse(f"{server}/jobs/{job_id}?token={TOKEN}", tmp_path / "x.png", dom=True)
    # the phantom's CT has the identity direction: axial R/L across, A/P down; coronal and sagittal S up
    expected = {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "S", "I"), "sagittal": ("A", "P", "S", "I")}
    for view, letters in expected.items():
        frame = dom.split(f"<h3>{view}</h3>")[1].split("</div>")[0]
        for side, text in zip(("left", "right", "top", "bottom"), letters, strict=True):
            assert f'data-letter="{side}">{text}</span>' in frame, (view, side)
    assert dom.count("data-wl=") == 3 and 'id="crosshair"' in dom
    faces = result["per_face_margin_mm"]
    table = dom.split('id="faces"')[1].split("</table>")[0]
    assert table.count("<tr") == len(faces) + 1 == 7
    closest = result["closest_face"]
    assert f'<td class="closest">{closest}</td>' in table
    assert f"{faces[closest]:.2f} mm" in table
    assert 'target="_blank"' in dom.split("full")[0][-200:]


def test_a_petct_job_without_a_response_says_why_and_shows_no_category(tmp_path: Path) -> None:
    """A follow-up whose prior could not be compared: the page gives the reason (escaped), the biomarkers and the
    lesion table, and no PERCIST category — a response is never implied."""
    import json

    from fastapi.testclient import TestClient

    store = tmp_path / "store"
    jobs = JobStore(store / "jobs.sqlite")
    jobs.file_received("1.2.3.4", "PT-1", "SCANNER", time.time() - 5)
    (study,) = jobs.quiet_studies(1.0)
    job_id = jobs.examined(study)
    claimed = jobs.claim("w", 30.0)
    assert claimed is not None and claimed.id == job_id
    results = store / "results" / str(job_id) / "petct"
    results.mkdir(parents=True)
    (results / "biomarkers.json").write_text(json.dumps({"lesion_count": 1, "sul_peak": 4.25, "suv_max": 7.5,
                                                         "mtv_ml": 3.2, "tlg": 12.0}))  # fmt: skip
    (results / "lesions.csv").write_text("label,site,volume_ml,suv_max,sul_peak,tlg\n1,bone,3.2,7.5,4.25,12.0\n")
    problem = "the prior study <b>was acquired after</b> this one"
    summary = {"workflow": "petct", "lesion_count": 1, "sul_peak": 4.25, "prior_job": 7, "response_problem": problem}
    jobs.finish(job_id, "w", str(results.parent), summary)
    page = TestClient(create_app(store)).get(f"/jobs/{job_id}").text
    assert "No response to the earlier study (job <a href='/jobs/7'>7</a>)" in page
    assert "the prior study &lt;b&gt;was acquired after&lt;/b&gt; this one" in page and "<b>was acquired" not in page
    assert 'id="percist"' not in page and "id='percist'" not in page
    assert "SULpeak <b>4.25</b>" in page and "<td>bone</td>" in page
