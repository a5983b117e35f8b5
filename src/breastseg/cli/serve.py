"""``breastseg serve`` (the DICOM listener and workers) and ``breastseg jobs`` (what they did)."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from breastseg.errors import MissingExtra
from breastseg.service.jobstore import JOB_STATES, Job, open_job_store

_store_option = click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("breastseg-store"),
    show_default=True,
    help="Folder for received studies (studies/), results (results/) and the default job store (jobs.sqlite).",
)
_db_option = click.option(
    "--db",
    default=None,
    help="Job store: a SQLite file (default: STORE/jobs.sqlite) or postgresql://user@host:port/db, which several "
    "worker processes can share.",
)


def _method_options(f: Any) -> Any:
    f = click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None, help="Model file.")(f)
    f = click.option(
        "--method",
        type=click.Choice(["threshold", "resunet"]),
        default="threshold",
        show_default=True,
        help="Specimen segmentation method (as `specimen assess --method`).",
    )(f)
    f = click.option(
        "--dest",
        "destination",
        default=None,
        help="Send SEG + SR + report to this DICOM node, AET@host:port (e.g. ORTHANC@pacs.local:4242); "
        "default: keep them in STORE/results only.",
    )(f)
    f = click.option(
        "--petct-model",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="A PET/CT lesion model (`petct train`): whole-body PET/CT studies are then segmented and measured "
        "(biomarkers; the response to the patient's earlier study). Without one they are refused, by name.",
    )(f)
    f = click.option(
        "--mri-model",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="A DCE-MRI tumour model (`mri train`): MR studies are then segmented on their dynamic series (tumour "
        "volume, longest diameter, kinetic curve; SEG + SR on the first post-contrast phase). Without one they are "
        "refused, by name.",
    )(f)
    f = click.option(
        "--ultrasound-model",
        default=None,
        metavar="PATH|packaged",
        help="An ultrasound model (`ultrasound train`), or `packaged` for the one shipped (see its model card): "
        "ultrasound studies then get a lesion mask per image (SEG + overlay). Without one they are refused, by name.",
    )(f)
    return f


def _ultrasound_model_path(value: str | None) -> Path | None:
    """``--ultrasound-model``: a model file, or ``packaged`` for the shipped one."""
    if value is None:
        return None
    if value == "packaged":
        from breastseg.workflows.ultrasound.model import default_model_path

        return default_model_path()
    path = Path(value)
    if not path.is_file():
        raise click.BadParameter(f"{value}: no such model file (or say `packaged`)", param_hint="--ultrasound-model")
    return path


def _worker_config(
    store: Path,
    destination: str | None,
    method: str,
    model: str | None,
    ae_title: str,
    petct_model: Path | None,
    mri_model: Path | None = None,
    ultrasound_model: str | None = None,
) -> Any:
    from breastseg.service.sender import Destination
    from breastseg.service.worker import WorkerConfig
    from breastseg.workflows.specimen.pipeline import AssessConfig

    return WorkerConfig(
        store=store,
        destination=Destination.parse(destination) if destination else None,
        assess=AssessConfig(method="resunet" if method == "resunet" else "threshold", model=model),
        calling_ae=ae_title,
        petct_model=petct_model,
        mri_model=mri_model,
        ultrasound_model=_ultrasound_model_path(ultrasound_model),
    )


def _until_signalled(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # its debug output dumps data sets
    logging.getLogger("highdicom").setLevel(logging.WARNING)


@click.group()
def serve() -> None:
    """Run breastseg as a service next to the scanner: a DICOM listener, workers, a web viewer."""


@serve.command("dicom")
@click.option("--ae-title", default="BREASTSEG", show_default=True, help="Our AE title (the scanner's destination).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; 0.0.0.0 for the network.")
@click.option("--port", type=click.IntRange(1, 65535), default=11112, show_default=True, help="DICOM port.")
@click.option(
    "--allow-ae",
    "allowed_aes",
    multiple=True,
    help="Calling AE title allowed to send (repeatable); others are rejected and logged.",
)
@click.option("--allow-any-ae", is_flag=True, help="Accept every calling AE title (testing only).")
@click.option("--allow-ip", "allowed_ips", multiple=True, help="Sender address allowed (repeatable; default: any).")
@click.option(
    "--quiet",
    "quiet_s",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds without a new file after which a study counts as complete and is assessed.",
)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True, help="Worker threads.")
@_method_options
@_store_option
@_db_option
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve_dicom(
    ae_title: str,
    host: str,
    port: int,
    allowed_aes: tuple[str, ...],
    allow_any_ae: bool,
    allowed_ips: tuple[str, ...],
    quiet_s: float,
    workers: int,
    destination: str | None,
    method: str,
    model: str | None,
    petct_model: Path | None,
    mri_model: Path | None,
    ultrasound_model: str | None,
    store: Path,
    db: str | None,
    verbose: bool,
) -> None:
    """Receive studies by DICOM, assess each, send the results (SEG, SR, report) to the PACS.

    A study is taken when no file has arrived for --quiet seconds. One CT and one PET series: a specimen
    micro-PET-CT (CT field of view at most 200 mm) gets its margin assessed; a whole-body PET/CT, given
    --petct-model, its lesions segmented and measured (and the response to the patient's earlier study). MR series
    only, given --mri-model: the tumour of the dynamic (DCE) series. Ultrasound images only, given
    --ultrasound-model: a lesion mask per image. Otherwise the job is recorded as rejected with the reason (see
    `breastseg jobs list`). Received files are on disk before the scanner hears they are stored; a restart resumes
    interrupted jobs.

    \b
    Example (scanner AE MICROPET, PACS Orthanc on this machine):
      breastseg serve dicom --allow-ae MICROPET --dest ORTHANC@127.0.0.1:4242 --store /data/breastseg
      storescu -aet MICROPET -aec BREASTSEG 127.0.0.1 11112 +sd +r study_folder/
      breastseg jobs list --store /data/breastseg
    """
    from breastseg.service.receiver import ListenerConfig
    from breastseg.service.server import DicomService, ServiceConfig

    if not allowed_aes and not allow_any_ae:
        raise click.UsageError("say which scanners may send: --allow-ae AET (repeatable), or --allow-any-ae")
    _logging(verbose)
    config = ServiceConfig(
        listener=ListenerConfig(store, ae_title, host, port, allowed_aes, allowed_ips),
        worker=_worker_config(store, destination, method, model, ae_title, petct_model, mri_model, ultrasound_model),
        quiet_s=quiet_s,
        workers=workers,
    )
    service = DicomService(config, open_job_store(store, db))
    _until_signalled(service.stopping)
    service.serve_forever()


@serve.command("worker")
@_method_options
@_store_option
@_db_option
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve_worker(
    destination: str | None,
    method: str,
    model: str | None,
    petct_model: Path | None,
    mri_model: Path | None,
    ultrasound_model: str | None,
    store: Path,
    db: str | None,
    verbose: bool,
) -> None:
    """An extra worker process for a running `serve dicom` (same --store; a shared PostgreSQL --db for several)."""
    from breastseg.service.jobstore import worker_id
    from breastseg.service.worker import Worker

    _logging(verbose)
    stop = threading.Event()
    _until_signalled(stop)
    jobs = open_job_store(store, db)
    jobs.recover()
    config = _worker_config(store, destination, method, model, "BREASTSEG", petct_model, mri_model, ultrasound_model)
    Worker(config, jobs, worker_id()).run(stop)


@serve.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address; another than loopback needs --token.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--token",
    envvar="BREASTSEG_TOKEN",
    default=None,
    help="Require this token (Bearer header, or ?token= once in a browser); also read from $BREASTSEG_TOKEN.",
)
@_store_option
@_db_option
def serve_web(host: str, port: int, token: str | None, store: Path, db: str | None) -> None:
    """A web viewer of the jobs: margin status, minimum margin, orthogonal slices with a slider, report, files.

    \b
    Example:
      breastseg serve web --store /data/breastseg          # then open http://127.0.0.1:8080
    """
    from breastseg.service.web import create_app  # first: it names the missing extra

    try:
        import uvicorn
    except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
        raise MissingExtra("service", "uvicorn") from exc

    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise click.UsageError(f"serving on {host} exposes patient data: give --token (or $BREASTSEG_TOKEN)")
    uvicorn.run(create_app(store, db, token), host=host, port=port, log_level="warning")


def _when(t: float | None) -> str:
    return "—" if t is None else _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _outcome(job: Job) -> str:
    if job.error:
        return job.error
    if job.summary:
        margin = job.summary.get("min_margin_mm")
        shown = "—" if margin is None else f"{margin:.2f} mm"
        return f"{job.summary.get('margin_status', '?')} margin, {shown}"
    return ""


@click.group()
def jobs() -> None:
    """The job store of `breastseg serve`: list jobs, show one, retry a failed one."""


@jobs.command("list")
@click.option("--state", "states", type=click.Choice(JOB_STATES), multiple=True, help="Only these states.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--events", "show_events", is_flag=True, help="Also list refused associations and files.")
@_store_option
@_db_option
def jobs_list(states: tuple[str, ...], limit: int, show_events: bool, store: Path, db: str | None) -> None:
    """The newest jobs first: state, study, times, outcome or error."""
    store_ = open_job_store(store, db)
    table = Table(title=f"jobs in {store_.url}")
    for column in ("id", "state", "study", "received", "finished", "tries", "outcome"):
        table.add_column(column, no_wrap=column == "state")
    for job in store_.jobs(states or None, limit):
        colour = {"done": "green", "failed": "red", "not assessable": "bold magenta", "rejected": "yellow"}.get(
            job.state, "cyan"
        )
        table.add_row(
            str(job.id),
            f"[{colour}]{job.state}[/]",
            job.study_uid,
            _when(job.last_received),
            _when(job.finished),
            str(job.attempts),
            _outcome(job),
        )
    Console().print(table)
    if show_events:
        events = Table(title="events")
        for column in ("time", "kind", "study", "message"):
            events.add_column(column)
        for t, kind, study, message in store_.events(limit):
            events.add_row(_when(t), kind, study or "", message)
        Console().print(events)


@jobs.command("show")
@click.argument("job_id", type=int)
@_store_option
@_db_option
def jobs_show(job_id: int, store: Path, db: str | None) -> None:
    """Everything about one job, as JSON."""
    job = open_job_store(store, db).job(job_id)
    if job is None:
        raise click.UsageError(f"no job {job_id}")
    click.echo(json.dumps(job.__dict__, indent=2, default=str))


@jobs.command("retry")
@click.argument("job_ids", type=int, nargs=-1, required=True)
@_store_option
@_db_option
def jobs_retry(job_ids: tuple[int, ...], store: Path, db: str | None) -> None:
    """Queue failed or rejected jobs again (a running `serve dicom` or `serve worker` picks them up)."""
    store_ = open_job_store(store, db)
    for job_id in job_ids:
        store_.retry(job_id)
        click.echo(f"job {job_id} queued")
