"""``breastseg serve web``: a FastAPI viewer of the job store — the job list, and per specimen the margin status in
large type, the minimum margin, three orthogonal slices with contours and a slider each, the report and the
downloads. JSON twins under ``/api``.

Security: the CLI binds to 127.0.0.1 unless told otherwise and refuses another address without a token. With a
token, every route needs it — ``Authorization: Bearer TOKEN`` for API clients, or ``?token=TOKEN`` once in a
browser, which sets an HttpOnly cookie. Every string that comes from DICOM or from the job store (UIDs, patient
IDs, error messages, face names) is HTML-escaped before it is shown; files are served from a fixed list only.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import traceback
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from breastseg.errors import BreastsegError, MissingExtra
from breastseg.image import Grid
from breastseg.io import read_image
from breastseg.report.figures import SPECIMEN_COLOUR, TUMOUR_COLOUR, direction_letters
from breastseg.report.slice_png import VIEW_AXIS, VIEWS, slice_png
from breastseg.service.jobstore import Job, open_job_store
from breastseg.service.layout import MRI_RESULTS, ULTRASOUND_RESULTS, assessment_folder, result_folder, study_folder
from breastseg.service.routing import MRI, PETCT, ULTRASOUND
from breastseg.service.studies import study_header

try:
    from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
    from fastapi import Path as PathParam
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
    raise MissingExtra("service", "fastapi") from exc

LOG = logging.getLogger("breastseg.service.web")

#: files a result page may serve, relative to STORE/results/<job>/
FILES = {
    "assessment/result.json": "application/json",
    "assessment/report.html": "text/html",
    "assessment/figures/closest_point.png": "image/png",
    "assessment/figures/surface_3d.png": "image/png",
    "assessment/tumour_mask.nii.gz": "application/gzip",
    "assessment/specimen_mask.nii.gz": "application/gzip",
    "petct/biomarkers.json": "application/json",
    "petct/lesions.csv": "text/csv",
    "petct/mip.png": "image/png",
    "petct/scan/lesions.nii.gz": "application/gzip",
    "petct/response/response.json": "application/json",
    "petct/response/mip.png": "image/png",
    "mri/result.json": "application/json",
    "mri/report.png": "image/png",
    "mri/tumour.nii.gz": "application/gzip",
    "ultrasound/summary.json": "application/json",
    "dicom/seg.dcm": "application/dicom",
    "dicom/sr.dcm": "application/dicom",
    "dicom/report.dcm": "application/dicom",
}
#: served to be read in the browser (the others are downloads)
INLINE = ("text/html", "image/png", "application/json")
#: CT window presets of the result page: name → (level, width) HU
WINDOWS = {
    "specimen": (0.0, 600.0),
    "soft tissue": (40.0, 400.0),
    "wire and calcification": (500.0, 3000.0),
}
_COOKIE = "breastseg_token"
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1b1f23; }
table { border-collapse: collapse; } td, th { padding: .3rem .7rem; border-bottom: 1px solid #ddd; text-align: left; }
.status { font-size: 4rem; font-weight: 800; padding: 1rem 2rem; color: white; display: block; }
.positive { background: #c62828; } .negative { background: #1a7f37; } .other { background: #6a737d; }
.measure { background: #1f4e8c; }
.facts { font-size: 1.6rem; margin: 1rem 0; } .views { display: flex; gap: 1rem; flex-wrap: wrap; }
.view img { image-rendering: pixelated; width: 440px; border: 1px solid #999; display: block; }
.view input[type=range] { width: 440px; display: block; } .frame { position: relative; display: inline-block; }
.letter { position: absolute; color: #ffd400; font-weight: 800; font-size: 1.1rem; text-shadow: 0 0 3px #000; }
.letter.left { left: 4px; top: 50%; } .letter.right { right: 4px; top: 50%; }
.letter.top { top: 2px; left: 50%; } .letter.bottom { bottom: 2px; left: 50%; }
.controls { margin: .8rem 0; display: flex; gap: 1.5rem; align-items: center; flex-wrap: wrap; }
.controls button.on { background: #1f6feb; color: white; } .small { color: #666; font-size: .85rem; }
.faces td.closest { font-weight: 800; }
.state-failed, .state-rejected { color: #c62828; } .state-done { color: #1a7f37; }
.state-not-assessable { color: #b35900; font-weight: 700; }
"""
#: job ids are SQL integers (int64): a larger number in a URL is "no such job", not a server error
MAX_JOB_ID = 2**63 - 1
JobId = Annotated[int, PathParam(ge=1, le=MAX_JOB_ID)]


def _css_state(state: str) -> str:
    return _e(state.replace(" ", "-"))


@dataclass(frozen=True)
class Volumes:
    """What a result page draws: the CT and the masks on its grid, ``(z, y, x)``."""

    ct: np.ndarray
    tumour: np.ndarray
    specimen: np.ndarray
    grid: Grid


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _when(t: float | None) -> str:
    return "—" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def create_app(store: str | Path, db: str | None = None, token: str | None = None) -> FastAPI:
    """The viewer of the job store of ``store`` (``db``: as ``breastseg serve --db``; ``token``: see above)."""
    store = Path(store)
    jobs = open_job_store(store, db)
    app = FastAPI(title="breastseg", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # a bug: say so, show no traceback
        LOG.error("%s %s failed:\n%s", request.method, request.url.path, traceback.format_exc())
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server's log"}, status_code=500)

    def authorised(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        given = given or request.cookies.get(_COOKIE) or request.query_params.get("token")
        if not given or not secrets.compare_digest(given, token):
            raise HTTPException(status_code=401, detail="a token is needed (Authorization: Bearer …)")

    def remember_token(request: Request, response: Response) -> None:
        if token is not None and request.query_params.get("token") == token:
            response.set_cookie(_COOKIE, token, httponly=True, samesite="strict")

    def job_or_404(job_id: int) -> Job:
        job = jobs.job(job_id)
        if job is None:
            raise HTTPException(status_code=404, detail=f"no job {job_id}")
        return job

    def result_of(job: Job) -> dict[str, Any] | None:
        path = assessment_folder(store, job.id) / "result.json"
        return json.loads(path.read_text(encoding="utf-8")) if job.state == "done" and path.is_file() else None

    @lru_cache(maxsize=4)
    def volumes(job_id: int) -> Volumes:
        job = job_or_404(job_id)
        folder = assessment_folder(store, job_id)
        ct = read_image(study_folder(store, job.study_uid), modality="CT")
        tumour = read_image(folder / "tumour_mask.nii.gz").array > 0
        specimen = read_image(folder / "specimen_mask.nii.gz").array > 0
        if tumour.shape != ct.shape:
            raise HTTPException(status_code=500, detail=f"job {job_id}: masks {tumour.shape} ≠ CT {ct.shape}")
        return Volumes(np.asarray(ct.array), tumour, specimen, ct.grid)

    @lru_cache(maxsize=1024)
    def identity(study_uid: str) -> dict[str, str]:
        return study_header(study_folder(store, study_uid))

    @lru_cache(maxsize=2)
    def pet_on_ct(job_id: int) -> np.ndarray | None:
        """The study's PET on the CT's grid, scaled 0–1 by its maximum (``None`` without a PET series)."""
        job = job_or_404(job_id)
        try:  # onto the grid of the CT the page already holds (no second read of the CT)
            pet = read_image(study_folder(store, job.study_uid), modality="PT").resample_onto(volumes(job_id).grid)
        except BreastsegError:
            return None
        values = np.asarray(pet.array, np.float32)
        peak = float(values.max())
        return values / peak if peak > 0 else None

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    def job_list(request: Request) -> HTMLResponse:
        rows = []
        for job in jobs.jobs(limit=200):
            outcome = job.error or ""
            if job.summary:
                outcome = _outcome(job.summary)
            who = identity(job.study_uid)
            method = (job.summary or {}).get("method") or "—"
            rows.append(
                f'<tr><td><a href="/jobs/{job.id}">{job.id}</a></td><td class="state-{_css_state(job.state)}">'
                f"{_e(job.state)}</td><td>{_e(who.get('PatientID', '—'))}</td>"
                f"<td>{_e(who.get('AccessionNumber', '—'))}</td><td>{_e(_study_date(who))}</td>"
                f"<td>{_e(method)}</td><td>{_when(job.last_received)}</td><td>{_when(job.finished)}</td>"
                f"<td title='study {_e(job.study_uid)}'>{_e(outcome)}</td></tr>"
            )
        table = "".join(rows) or '<tr><td colspan="9">no jobs yet</td></tr>'
        response = _page(
            "breastseg jobs",
            "<h1>breastseg jobs</h1><table><tr><th>job</th><th>state</th><th>patient</th><th>accession</th>"
            "<th>study date</th><th>method</th><th>last file</th><th>finished</th><th>outcome</th></tr>"
            f"{table}</table>",
        )
        remember_token(request, response)
        return response

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    def job_page(job_id: JobId, request: Request) -> HTMLResponse:
        job = job_or_404(job_id)
        result = result_of(job)
        study = jobs.study(job.study_uid)
        who = identity(job.study_uid)
        patient = who.get("PatientID") or (study.patient_id if study else "")
        head = (
            f"<p><a href='/'>all jobs</a></p><h1>Job {job.id}: specimen study</h1>"
            f"<p>patient <b>{_e(patient)}</b> · accession <b>{_e(who.get('AccessionNumber', '—'))}</b> · "
            f"study date {_e(_study_date(who))} · state <b class='state-{_css_state(job.state)}'>{_e(job.state)}</b>"
            f"</p><p class='small' title='study instance UID'>{_e(job.study_uid)}</p>"
        )
        workflow = (job.summary or {}).get("workflow")
        if job.state == "done" and workflow in WORKFLOW_PAGES:
            kind, render = WORKFLOW_PAGES[workflow]
            page = head.replace("specimen study", kind) + render(job, result_folder(store, job.id))
            response = _page(f"breastseg job {job.id}: {kind}", page)
            remember_token(request, response)
            return response
        if result is None:
            body = head + f"<p class='status other'>{_e(job.state.upper())}</p><p>{_e(job.error or '')}</p>"
            response = _page(f"breastseg job {job.id}", body)
            remember_token(request, response)
            return response
        status = str(result["margin_status"])
        margin = result.get("min_margin_mm")
        margin_text = "no tumour found" if margin is None else f"{margin:.2f} mm"
        facts = (
            f"<div class='facts'>minimum margin <b>{_e(margin_text)}</b> · closest face "
            f"<b>{_e(result.get('closest_face'))}</b> · tumour {float(result['tumour_volume_ml']):.2f} ml · "
            f"method {_e(result.get('method'))}</div>"
        )
        vol = volumes(job.id)
        index = _closest_index(result, vol)
        cross = ",".join(str(i) for i in index)
        views = []
        for view in VIEWS:
            axis = VIEW_AXIS[view]
            n = vol.ct.shape[axis]
            k = index[axis]
            left, right, top, bottom = _letters(vol.grid, view)
            letters = "".join(
                f"<span class='letter {side}' data-letter='{side}'>{_e(text)}</span>"
                for side, text in (("left", left), ("right", right), ("top", top), ("bottom", bottom))
            )
            views.append(
                f"<div class='view'><h3>{view}</h3><div class='frame'><img id='img-{view}' alt='{view} slice' "
                f"src='/jobs/{job.id}/slices/{view}/{k}.png?cross={cross}'>{letters}</div>"
                f"<input type='range' id='slider-{view}' min='0' max='{n - 1}' value='{k}' data-view='{view}' "
                f"aria-label='{view} slice'> <span id='label-{view}'>{k + 1} / {n}</span></div>"
            )
        presets = "".join(
            f"<button type='button' data-wl='{level:g},{width:g}'{' class=on' if i == 0 else ''}>{_e(name)} "
            f"(L {level:g} W {width:g})</button>"
            for i, (name, (level, width)) in enumerate(WINDOWS.items())
        )
        controls = (
            f"<div class='controls'><span>CT window: {presets}</span>"
            "<label>PET opacity <input type='range' id='pet-opacity' min='0' max='100' value='0' "
            "aria-label='PET opacity'> <span id='pet-label'>0 %</span></label>"
            "<label><input type='checkbox' id='crosshair' checked> crosshair at the closest point</label></div>"
        )
        faces = result.get("per_face_margin_mm") or {}
        face_rows = "".join(
            f"<tr{' class=closest' if face == result.get('closest_face') else ''}><td"
            f"{' class=closest' if face == result.get('closest_face') else ''}>{_e(face)}</td>"
            f"<td>{'—' if value is None else f'{float(value):.2f} mm'}</td></tr>"
            for face, value in faces.items()
        )
        face_table = (
            f"<h2>Margin per face</h2><table class='faces' id='faces'><tr><th>face</th><th>minimum margin</th></tr>"
            f"{face_rows}</table>"
            if faces
            else ""
        )
        downloads = " · ".join(
            f"<a href='/jobs/{job.id}/files/{name}'>{_e(name.split('/')[-1])}</a>"
            for name in FILES
            if (result_folder(store, job.id) / name).is_file()
        )
        script = (
            "<script>const state = {wl: '"
            + ",".join(f"{v:g}" for v in next(iter(WINDOWS.values())))
            + f"', pet: 0, cross: '{cross}'}};"
            "function refresh(v) { const s = document.getElementById('slider-' + v);"
            "const q = new URLSearchParams({wl: state.wl, pet: state.pet / 100});"
            "if (document.getElementById('crosshair').checked) q.set('cross', state.cross);"
            f"document.getElementById('img-' + v).src = '/jobs/{job.id}/slices/' + v + '/' + s.value + '.png?' + q;"
            "document.getElementById('label-' + v).textContent = (Number(s.value) + 1) + ' / ' + (Number(s.max) + 1);}"
            "const all = () => ['axial', 'coronal', 'sagittal'].forEach(refresh);"
            "for (const s of document.querySelectorAll('input[data-view]')) s.addEventListener('input', () => "
            "refresh(s.dataset.view));"
            "for (const b of document.querySelectorAll('button[data-wl]')) b.addEventListener('click', () => {"
            "state.wl = b.dataset.wl; document.querySelectorAll('button[data-wl]').forEach(x => "
            "x.classList.toggle('on', x === b)); all(); });"
            "const pet = document.getElementById('pet-opacity'); pet.addEventListener('input', () => {"
            "state.pet = Number(pet.value); document.getElementById('pet-label').textContent = pet.value + ' %'; all();"
            "});"
            "document.getElementById('crosshair').addEventListener('change', all);"
            "if (new URLSearchParams(location.search).has('pet')) { pet.value = "
            "new URLSearchParams(location.search).get('pet'); pet.dispatchEvent(new Event('input')); }"
            "</script>"
        )
        css_class = status if status in ("positive", "negative") else "other"
        body = (
            head
            + f"<div class='status {css_class}' id='status'>{_e(status.upper())}</div>"
            + facts
            + controls
            + f"<div class='views'>{''.join(views)}</div>"
            + face_table
            + f"<p><a href='/jobs/{job.id}/files/assessment/report.html' target='_blank' rel='noopener'>full "
            "report</a> (opens in a new tab)</p>" + f"<p>downloads: {downloads}</p>" + script
        )
        response = _page(f"breastseg job {job.id}: {status}", body)
        remember_token(request, response)
        return response

    @app.get("/jobs/{job_id}/slices/{view}/{index}.png", dependencies=[Depends(authorised)])
    def slice_image(
        job_id: JobId,
        view: str,
        index: int,
        wl: str | None = None,
        pet: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
        cross: str | None = None,
    ) -> Response:
        """One slice; ``wl`` "level,width" (HU), ``pet`` the PET overlay's opacity 0–1, ``cross`` "z,y,x"."""
        job = job_or_404(job_id)
        if result_of(job) is None:
            raise HTTPException(status_code=404, detail=f"job {job_id} has no result")
        vol = volumes(job_id)
        window = _window(wl)
        point = _numbers(cross, 3, "cross") if cross else None
        overlay = pet_on_ct(job_id) if pet > 0 else None
        try:
            png = slice_png(
                vol.ct,
                vol.grid.spacing,
                view,
                index,
                {SPECIMEN_COLOUR: vol.specimen, TUMOUR_COLOUR: vol.tumour},
                window_hu=window,
                overlay=overlay,
                overlay_opacity=pet,
                cross=point,
            )
        except BreastsegError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/jobs/{job_id}/files/{name:path}", dependencies=[Depends(authorised)])
    def job_file(job_id: JobId, name: str) -> FileResponse:
        job_or_404(job_id)
        path = result_folder(store, job_id) / name
        if name not in FILES or not path.is_file():
            raise HTTPException(status_code=404, detail="no such file")
        disposition = "inline" if FILES[name] in INLINE else "attachment"
        return FileResponse(path, media_type=FILES[name], filename=path.name, content_disposition_type=disposition)

    @app.get("/jobs/{job_id}/ultrasound/{index}/{kind}.png", dependencies=[Depends(authorised)])
    def ultrasound_png(job_id: JobId, index: Annotated[int, PathParam(ge=0, le=100_000)], kind: str) -> FileResponse:
        """Image ``index`` of an ultrasound job's summary.json: its overlay or mask PNG (named there, never by the
        URL)."""
        job_or_404(job_id)
        images = _ultrasound_images(result_folder(store, job_id))
        if kind not in ("overlay", "mask") or index >= len(images):
            raise HTTPException(status_code=404, detail="no such image")
        path = result_folder(store, job_id) / ULTRASOUND_RESULTS / Path(str(images[index][kind])).name
        if not path.is_file():
            raise HTTPException(status_code=404, detail="no such image")
        return FileResponse(path, media_type="image/png", content_disposition_type="inline")

    @app.get("/api/jobs", dependencies=[Depends(authorised)])
    def api_jobs() -> JSONResponse:
        return JSONResponse([j.__dict__ for j in jobs.jobs(limit=200)])

    @app.get("/api/jobs/{job_id}", dependencies=[Depends(authorised)])
    def api_job(job_id: JobId) -> JSONResponse:
        job = job_or_404(job_id)
        return JSONResponse({**job.__dict__, "result": result_of(job)})

    return app


def _closest_index(result: dict[str, Any], vol: Volumes) -> tuple[int, int, int]:
    """The slices to open at: through the tumour voxel nearest the surface (``closest_point_mm``, LPS), else the
    centre of the tumour, else of the specimen, else of the volume."""
    point = result.get("closest_point_mm")
    shape = vol.ct.shape
    if point is not None:
        index = np.round(vol.grid.world_to_index(point)).astype(int)
        return (
            int(np.clip(index[0], 0, shape[0] - 1)),
            int(np.clip(index[1], 0, shape[1] - 1)),
            int(np.clip(index[2], 0, shape[2] - 1)),
        )
    for mask in (vol.tumour, vol.specimen):
        if mask.any():
            c = np.argwhere(mask).mean(axis=0).round().astype(int)
            return (int(c[0]), int(c[1]), int(c[2]))
    return (shape[0] // 2, shape[1] // 2, shape[2] // 2)


def _numbers(text: str, count: int, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count or not all(np.isfinite(values)):
        raise HTTPException(status_code=422, detail=f"{name}: {count} numbers separated by commas")
    return values


def _window(wl: str | None) -> tuple[float, float]:
    """The CT window ``(low, high)`` HU of a ``"level,width"`` query (the first preset without one)."""
    level, width = _numbers(wl, 2, "wl") if wl else next(iter(WINDOWS.values()))
    if width <= 0:
        raise HTTPException(status_code=422, detail="wl: the width must be positive")
    return level - width / 2, level + width / 2


def _letters(grid: Grid, view: str) -> tuple[str, str, str, str]:
    """The patient directions at the left, right, top and bottom edges of a slice as :func:`slice_png` lays it
    out (coronal and sagittal rows flipped), from the grid's direction matrix."""
    axis = VIEW_AXIS[view]
    rows_axis, cols_axis = [a for a in range(3) if a != axis]
    left, right = direction_letters(grid, cols_axis)
    top, bottom = direction_letters(grid, rows_axis)
    return (left, right, top, bottom) if view == "axial" else (left, right, bottom, top)


def _study_date(who: dict[str, str]) -> str:
    date = who.get("StudyDate", "")
    return f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 and date.isdigit() else (date or "—")


def _outcome(summary: dict[str, Any]) -> str:
    """A finished job's read-out in one line: the margin of a specimen, the lesions and response of a PET/CT, the
    tumour of an MRI, the lesions found in an ultrasound study's images."""
    if summary.get("workflow") == MRI:
        if not summary.get("tumour_found"):
            return "no tumour found"
        return (
            f"tumour {_number(summary.get('volume_ml'), 2)} ml · {_number(summary.get('longest_diameter_mm'), 1)} mm"
            + (f" · {summary['curve_type']}" if summary.get("curve_type") else "")
        )
    if summary.get("workflow") == ULTRASOUND:
        return f"lesion in {summary.get('lesions_found')} of {summary.get('images')} images"
    if summary.get("workflow") == PETCT:
        text = f"{summary.get('lesion_count')} lesions"
        if summary.get("sul_peak") is not None:
            text += f" · SULpeak {float(summary['sul_peak']):.2f}"
        return text + (f" · PERCIST {summary['percist']}" if summary.get("percist") else "")
    margin = summary.get("min_margin_mm")
    return f"{summary.get('margin_status')} · " + ("—" if margin is None else f"{margin:.2f} mm")


def _number(value: Any, decimals: int) -> str:
    return "—" if value in (None, "") else f"{float(value):.{decimals}f}"


#: the lesion table's columns: lesions.csv key, heading, decimals (None: text)
LESION_TABLE = (
    ("label", "lesion", None),
    ("site", "site", None),
    ("volume_ml", "volume (ml)", 2),
    ("suv_max", "SUVmax", 2),
    ("sul_peak", "SULpeak", 2),
    ("tlg", "TLG", 1),
    ("centroid_x_mm", "x (mm)", 1),
    ("centroid_y_mm", "y (mm)", 1),
    ("centroid_z_mm", "z (mm)", 1),
)


def _petct_body(job: Job, folder: Path) -> str:
    """A whole-body PET/CT job's page: the biomarkers, the MIP with the lesions numbered, the lesion table as
    ``lesions.csv`` holds it and, against the patient's earlier study, the PERCIST category in large type with
    both MIPs — or "not assessable" and the reason."""
    import csv

    from breastseg.service.layout import PETCT_RESULTS

    results = folder / PETCT_RESULTS
    doc = json.loads((results / "biomarkers.json").read_text(encoding="utf-8"))
    facts = (
        f"<div class='facts' id='biomarkers'><b>{int(doc['lesion_count'])}</b> lesions · SULpeak "
        f"<b>{_number(doc.get('sul_peak'), 2)}</b> · SUVmax {_number(doc.get('suv_max'), 2)} · MTV "
        f"{_number(doc.get('mtv_ml'), 1)} ml · TLG {_number(doc.get('tlg'), 0)} · method "
        f"{_e((job.summary or {}).get('method'))}</div>"
    )
    response_html = ""
    response_path = results / "response" / "response.json"
    problem = (job.summary or {}).get("response_problem")
    prior_job = (job.summary or {}).get("prior_job")
    prior = "" if prior_job in (None, "") else f" (job <a href='/jobs/{_e(prior_job)}'>{_e(prior_job)}</a>)"
    if problem:
        response_html = (
            f"<h2>No response to the earlier study{prior}</h2>"
            f"<p class='state-not-assessable' id='response-problem'>{_e(problem)}</p>"
        )
    elif response_path.is_file():
        response = json.loads(response_path.read_text(encoding="utf-8"))
        category = str(response["percist"]["category"])
        css = {"CMR": "negative", "PMR": "negative", "PMD": "positive"}.get(category, "other")
        response_html = (
            f"<h2>Response to the earlier study{prior}</h2>"
            f"<div class='status {css}' id='percist'>PERCIST {_e(category)}</div>"
            f"<p>{_e(response['percist'].get('reason'))}</p>"
            f"<img src='/jobs/{job.id}/files/petct/response/mip.png' alt='baseline and follow-up MIPs' "
            "style='max-width: 100%'>"
        )
    with (results / "lesions.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = "".join(
        "<tr>"
        + "".join(
            f"<td>{_e(row.get(key)) if decimals is None else _number(row.get(key), decimals)}</td>"
            for key, _, decimals in LESION_TABLE
        )
        + "</tr>"
        for row in rows
    )
    heading = "".join(f"<th>{_e(name)}</th>" for _, name, _ in LESION_TABLE)
    downloads = _downloads(job, folder, ("petct/", "dicom/"))
    return (
        facts
        + response_html
        + f"<h2>Maximum-intensity projection</h2><img src='/jobs/{job.id}/files/petct/mip.png' id='mip' "
        "alt='coronal MIP with the lesions numbered' style='max-width: 100%'>"
        + f"<h2>Lesions (as lesions.csv; centroids LPS mm)</h2><table id='lesions'><tr>{heading}</tr>{table}</table>"
        + f"<p>downloads: {downloads}</p>"
    )


def _ultrasound_images(folder: Path) -> list[dict[str, Any]]:
    path = folder / ULTRASOUND_RESULTS / "summary.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")).get("images", []))


def _downloads(job: Job, folder: Path, prefixes: tuple[str, ...]) -> str:
    return " · ".join(
        f"<a href='/jobs/{job.id}/files/{name}'>{_e(name.split('/')[-1])}</a>"
        for name in FILES
        if name.startswith(prefixes) and (folder / name).is_file()
    )


def _mri_body(job: Job, folder: Path) -> str:
    """A DCE-MRI job's page: the tumour's read-outs in large type (volume, longest diameter, kinetic curve,
    functional tumour volume), the report figure (three planes and the kinetics) and the downloads."""
    doc = json.loads((folder / MRI_RESULTS / "result.json").read_text(encoding="utf-8"))
    tumour = doc["tumour"]
    if not doc.get("tumour_found"):
        headline = "<div class='status other' id='tumour'>NO TUMOUR FOUND</div>"
    else:
        headline = f"<div class='status measure' id='tumour'>tumour {_number(tumour.get('volume_ml'), 2)} ml</div>"
    late = tumour.get("late_change_percent")
    facts = (
        f"<div class='facts' id='readouts'>longest diameter <b>{_number(tumour.get('longest_diameter_mm'), 1)} mm"
        f"</b> · kinetic curve <b>{_e(tumour.get('curve_type') or '—')}</b>"
        + ("" if late is None else f" (late change {float(late):+.0f} %)")
        + f" · functional tumour volume {_number(tumour.get('functional_volume_ml'), 2)} ml · "
        f"{len(doc.get('post_times_s', []))} post-contrast phases · method {_e((job.summary or {}).get('method'))}"
        "</div>"
    )
    return (
        headline + facts + f"<h2>Report</h2><img src='/jobs/{job.id}/files/mri/report.png' id='report' "
        "alt='the tumour on three planes of the subtraction image, and its kinetics' style='max-width: 100%'>"
        + f"<p>downloads: {_downloads(job, folder, ('mri/', 'dicom/'))}</p>"
    )


def _ultrasound_body(job: Job, folder: Path) -> str:
    """An ultrasound job's page: per image its overlay (the outline and legend) and a row of its read-outs —
    lesion found, area (mm² when the image states its pixel size), the network's peak probability."""
    images = _ultrasound_images(folder)
    rows, figures = [], []
    for k, image in enumerate(images):
        area = image.get("area_mm2")
        area_text = f"{float(area):.1f} mm²" if area is not None else f"{int(image.get('area_px', 0))} px"
        found = "lesion" if image.get("lesion_found") else "none"
        rows.append(
            f"<tr><td>{k + 1}</td><td>{_e(found)}</td><td>{_e(area_text)}</td>"
            f"<td>{_number(image.get('peak_probability'), 2)}</td></tr>"
        )
        figures.append(
            f"<div class='view'><img src='/jobs/{job.id}/ultrasound/{k}/overlay.png' alt='image {k + 1} with the "
            f"predicted outline' class='overlay'><p class='small'>image {k + 1}</p></div>"
        )
    table = "".join(rows) or "<tr><td colspan='4'>no images</td></tr>"
    return (
        f"<div class='facts' id='readouts'>{_e(_outcome(job.summary or {}))} · method "
        f"{_e((job.summary or {}).get('method'))}</div>"
        "<table id='images'><tr><th>image</th><th>finding</th><th>area</th><th>peak probability</th></tr>"
        f"{table}</table><div class='views'>{''.join(figures)}</div>"
        + f"<p>downloads: {_downloads(job, folder, ('ultrasound/', 'dicom/'))}</p>"
    )


#: workflow → (how a result page names its study, the page's body)
WORKFLOW_PAGES = {
    PETCT: ("whole-body PET/CT study", _petct_body),
    MRI: ("breast DCE-MRI study", _mri_body),
    ULTRASOUND: ("breast ultrasound study", _ultrasound_body),
}
