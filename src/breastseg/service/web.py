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
from breastseg.report.figures import SPECIMEN_COLOUR, TUMOUR_COLOUR
from breastseg.report.slice_png import VIEW_AXIS, VIEWS, slice_png
from breastseg.service.jobstore import Job, open_job_store
from breastseg.service.layout import assessment_folder, result_folder, study_folder

try:
    from fastapi import Depends, FastAPI, HTTPException, Request, Response
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
    "assessment/tumour_mask.nii.gz": "application/gzip",
    "assessment/specimen_mask.nii.gz": "application/gzip",
    "dicom/seg.dcm": "application/dicom",
    "dicom/sr.dcm": "application/dicom",
    "dicom/report.dcm": "application/dicom",
}
_COOKIE = "breastseg_token"
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1b1f23; }
table { border-collapse: collapse; } td, th { padding: .3rem .7rem; border-bottom: 1px solid #ddd; text-align: left; }
.status { font-size: 4rem; font-weight: 800; padding: 1rem 2rem; color: white; display: block; }
.positive { background: #c62828; } .negative { background: #1a7f37; } .other { background: #6a737d; }
.facts { font-size: 1.6rem; margin: 1rem 0; } .views { display: flex; gap: 1rem; flex-wrap: wrap; }
.view img { image-rendering: pixelated; width: 330px; border: 1px solid #999; } .view input { width: 330px; }
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

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    def job_list(request: Request) -> HTMLResponse:
        rows = []
        for job in jobs.jobs(limit=200):
            outcome = job.error or ""
            if job.summary:
                margin = job.summary.get("min_margin_mm")
                outcome = f"{job.summary.get('margin_status')} · " + ("—" if margin is None else f"{margin:.2f} mm")
            rows.append(
                f'<tr><td><a href="/jobs/{job.id}">{job.id}</a></td><td class="state-{_css_state(job.state)}">'
                f"{_e(job.state)}</td><td>{_e(job.study_uid)}</td><td>{_when(job.last_received)}</td>"
                f"<td>{_when(job.finished)}</td><td>{_e(outcome)}</td></tr>"
            )
        table = "".join(rows) or '<tr><td colspan="6">no jobs yet</td></tr>'
        response = _page(
            "breastseg jobs",
            "<h1>breastseg jobs</h1><table><tr><th>job</th><th>state</th><th>study</th><th>last file</th>"
            f"<th>finished</th><th>outcome</th></tr>{table}</table>",
        )
        remember_token(request, response)
        return response

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, dependencies=[Depends(authorised)])
    def job_page(job_id: JobId, request: Request) -> HTMLResponse:
        job = job_or_404(job_id)
        result = result_of(job)
        study = jobs.study(job.study_uid)
        head = (
            f"<p><a href='/'>all jobs</a></p><h1>Job {job.id}: specimen study</h1>"
            f"<p>study {_e(job.study_uid)} · patient {_e(study.patient_id if study else '')} · "
            f"state <b class='state-{_css_state(job.state)}'>{_e(job.state)}</b></p>"
        )
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
        views = []
        for view in VIEWS:
            axis = VIEW_AXIS[view]
            n = vol.ct.shape[axis]
            k = index[axis]
            views.append(
                f"<div class='view'><h3>{view}</h3><img id='img-{view}' alt='{view} slice' "
                f"src='/jobs/{job.id}/slices/{view}/{k}.png'><br><input type='range' id='slider-{view}' "
                f"min='0' max='{n - 1}' value='{k}' data-view='{view}' aria-label='{view} slice'> "
                f"<span id='label-{view}'>{k + 1} / {n}</span></div>"
            )
        downloads = " · ".join(
            f"<a href='/jobs/{job.id}/files/{name}'>{_e(name.split('/')[-1])}</a>"
            for name in FILES
            if (result_folder(store, job.id) / name).is_file()
        )
        script = (
            "<script>for (const s of document.querySelectorAll('input[type=range]')) {"
            "s.addEventListener('input', () => { const v = s.dataset.view;"
            f"document.getElementById('img-' + v).src = '/jobs/{job.id}/slices/' + v + '/' + s.value + '.png';"
            "document.getElementById('label-' + v).textContent = (Number(s.value) + 1) + ' / ' + (Number(s.max) + 1);"
            "}); }</script>"
        )
        css_class = status if status in ("positive", "negative") else "other"
        body = (
            head
            + f"<div class='status {css_class}' id='status'>{_e(status.upper())}</div>"
            + facts
            + f"<div class='views'>{''.join(views)}</div>"
            + f"<p><a href='/jobs/{job.id}/files/assessment/report.html'>full report</a></p>"
            + f"<p>downloads: {downloads}</p>"
            + script
        )
        response = _page(f"breastseg job {job.id}: {status}", body)
        remember_token(request, response)
        return response

    @app.get("/jobs/{job_id}/slices/{view}/{index}.png", dependencies=[Depends(authorised)])
    def slice_image(job_id: JobId, view: str, index: int) -> Response:
        job = job_or_404(job_id)
        if result_of(job) is None:
            raise HTTPException(status_code=404, detail=f"job {job_id} has no result")
        vol = volumes(job_id)
        try:
            png = slice_png(
                vol.ct, vol.grid.spacing, view, index, {SPECIMEN_COLOUR: vol.specimen, TUMOUR_COLOUR: vol.tumour}
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
        return FileResponse(path, media_type=FILES[name], filename=path.name)

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
