"""Running a cohort: each case through its workflow on a local process pool or a Dask cluster, models loaded once
per worker, every case recorded, reruns skipping what is unchanged.

Layout of ``OUT``: ``OUT/<case_id>/`` holds the workflow's outputs (as the single-case command writes them,
replaced atomically) and ``case.json`` (status, error, read-outs, seconds, worker, content hash); ``OUT/cohort.csv``
has one row per case in manifest order (status, error, read-outs, the manifest's other cells prefixed ``ref_``);
``OUT/summary.json`` the cohort summary of the workflow. A case that fails is recorded with its error and the run
goes on. A rerun skips cases whose ``case.json`` says done with the same content hash (inputs, model, options)
and runs the others, failed ones included.

Engines: in this process (``workers=1``), a local process pool (``workers>1``, spawned processes), or Dask
distributed (``scheduler="tcp://host:8786"``; start workers with ``dask worker tcp://host:8786 --nthreads 1``,
on machines that see ``OUT`` and the inputs at the same paths). Dask re-runs the cases of a worker that dies on
another worker; writes are atomic, so a case is never half-written or recorded twice.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breastseg.batch.manifest import Case, content_hash
from breastseg.errors import BreastsegError, InputError, MissingExtra
from breastseg.io.atomic import write_json, write_marker
from breastseg.io.outputs import check_apart_from_inputs, expected_output_bytes, prepare_output_folder
from breastseg.io.tables import write_csv_rows
from breastseg.sanity import NotAssessable

CASE_RECORD = "case.json"
#: a case whose inputs were read but hold no usable signal, or whose pair could not be registered
NOT_ASSESSABLE_STATUS = "not assessable"
_STATE: dict[str, Any] = {}
_STATE_LOCK = threading.Lock()


@dataclass(frozen=True)
class CaseTask:
    """What a worker needs for one case."""

    runner: Any
    case: Case
    out_root: Path
    content_hash: str


def _state_for(runner: Any) -> Any:
    """The runner's loaded models, built once per worker process (the cache lives in this module)."""
    key = f"{type(runner).__name__}:{json.dumps(runner.options(), sort_keys=True, default=str)}"
    with _STATE_LOCK:
        if key not in _STATE:
            _STATE[key] = runner.load()
        return _STATE[key]


def run_case(task: CaseTask) -> dict[str, Any]:
    """Run one case in this worker and record it (``OUT/<case_id>/case.json``); never raises for a case error."""
    out_dir = task.out_root / task.case.case_id
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "case_id": task.case.case_id,
        "content_hash": task.content_hash,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    try:
        readouts = task.runner.run(_state_for(task.runner), task.case, out_dir)
        record.update(status="done", error=None, readouts=readouts)
    except NotAssessable as exc:
        record.update(status=NOT_ASSESSABLE_STATUS, error=str(exc), readouts={})
    except BreastsegError as exc:
        record.update(status="failed", error=str(exc), readouts={})
    except Exception as exc:  # a bug in one case must not stop the cohort: record it with its traceback
        record.update(status="failed", error=f"unexpected {type(exc).__name__}: {exc}", readouts={})
        record["traceback"] = traceback.format_exc()
    record["seconds"] = round(time.perf_counter() - t0, 3)
    record["cells"] = task.case.cells
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(record, out_dir / CASE_RECORD)
    return record


def _previous(out_root: Path, case: Case) -> dict[str, Any] | None:
    path = out_root / case.case_id / CASE_RECORD
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _limit_threads(threads: int) -> None:
    """Each pool process uses its share of the cores (set before numpy/torch start their thread pools)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[var] = str(threads)


@dataclass(frozen=True)
class BatchResult:
    """What a cohort run did: every case's record (manifest order), and how many ran, were skipped, failed (failed
    includes the cases found not assessable)."""

    records: list[dict[str, Any]]
    ran: int
    skipped: int
    failed: int
    seconds: float


def run_batch(
    runner: Any,
    cases: Sequence[Case],
    out_root: str | Path,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    overwrite: bool = False,
    manifest: str | Path | None = None,
) -> BatchResult:
    """Run ``cases`` through ``runner`` (see the module docstring); writes ``cohort.csv`` and ``summary.json``.

    ``progress`` is called with each case's record as it completes (skipped cases included). The cohort folder is
    checked first (:func:`breastseg.io.outputs.prepare_output_folder`, with the cases' files and the ``manifest`` as
    inputs; ``overwrite`` as there), and no case's folder may be, hold or lie inside one of its inputs.
    """
    out_root = Path(out_root).resolve()
    inputs = [p for c in cases for p in c.inputs.values()]
    need = expected_output_bytes(inputs)  # the cases' files are checked below, after the folder itself
    prepare_output_folder(out_root, inputs=[manifest], overwrite=overwrite, need_bytes=need)
    for case in cases:
        check_apart_from_inputs(out_root / case.case_id, case.inputs.values(), f"case {case.case_id}'s folder")
    check_apart_from_inputs(out_root, inputs)
    out_root.mkdir(parents=True, exist_ok=True)
    write_marker(out_root, [], merge=True)  # written step by step: a rerun must find it breastseg's
    t0 = time.perf_counter()
    models = runner.model_files()
    records: dict[str, dict[str, Any]] = {}
    tasks: list[CaseTask] = []
    for case in cases:
        digest = content_hash(case, models, runner.options())
        before = _previous(out_root, case)
        if before and before.get("status") == "done" and before.get("content_hash") == digest:
            before["skipped"] = True
            records[case.case_id] = before
            if progress:
                progress(before)
        else:
            tasks.append(CaseTask(runner, case, out_root, digest))

    def done(record: dict[str, Any]) -> None:
        records[record["case_id"]] = record
        if progress:
            progress(record)

    if scheduler:
        _run_dask(tasks, scheduler, done)
    elif workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            done(run_case(task))
    else:
        _run_pool(tasks, workers, done)
    ordered = [records[c.case_id] for c in cases]
    write_cohort_table(ordered, out_root / "cohort.csv")
    summary: dict[str, Any] = {
        "workflow": runner.name,
        "cases": len(cases),
        "done": sum(r["status"] == "done" for r in ordered),
        "failed": [{"case_id": r["case_id"], "error": r["error"]} for r in ordered if r["status"] == "failed"],
        "not_assessable": [
            {"case_id": r["case_id"], "reason": r["error"]} for r in ordered if r["status"] == NOT_ASSESSABLE_STATUS
        ],
    }
    try:
        summary.update(runner.summary([_row(r) for r in ordered]))
    except BreastsegError as exc:  # a summary that cannot be computed must not lose the cases' results
        summary["summary_error"] = str(exc)
    write_json(summary, out_root / "summary.json")
    return BatchResult(
        ordered,
        ran=len(tasks),
        skipped=len(cases) - len(tasks),
        failed=len(summary["failed"]) + len(summary["not_assessable"]),
        seconds=time.perf_counter() - t0,
    )


def _run_pool(tasks: Sequence[CaseTask], workers: int, done: Callable[[dict[str, Any]], None]) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_limit_threads, initargs=(threads,)
    ) as pool:
        futures: dict[Future[dict[str, Any]], CaseTask] = {pool.submit(run_case, t): t for t in tasks}
        for future in as_completed(futures):
            try:
                done(future.result())
            except Exception as exc:  # the worker process itself died (killed, out of memory)
                task = futures[future]
                done(_lost(task, f"worker process died: {type(exc).__name__}: {exc}"))


def _lost(task: CaseTask, error: str) -> dict[str, Any]:
    record: dict[str, Any] = {"case_id": task.case.case_id, "content_hash": task.content_hash, "status": "failed"}
    record["error"] = error
    record.update(readouts={}, cells=task.case.cells, seconds=None, worker=None)
    return record


def _run_dask(tasks: Sequence[CaseTask], scheduler: str, done: Callable[[dict[str, Any]], None]) -> None:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
        raise MissingExtra("batch", "dask distributed") from exc
    try:
        client = Client(scheduler, timeout=30)
    except OSError as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from exc
    with client:
        futures = {
            client.submit(
                run_case, t, key=f"breastseg-{t.case.case_id}-{t.content_hash[:12]}", retries=2, pure=False
            ): t
            for t in tasks
        }
        for future in dask_completed(list(futures)):
            try:
                done(future.result())
            except Exception as exc:  # the case's worker died more often than the retries allow
                done(_lost(futures[future], f"lost on the Dask cluster: {type(exc).__name__}: {exc}"))


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"case_id": record["case_id"], "status": record["status"], "error": record.get("error")}
    row["seconds"] = record.get("seconds")
    row.update(record.get("readouts") or {})
    row.update({f"ref_{k}": v for k, v in (record.get("cells") or {}).items()})
    return row


def write_cohort_table(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """One row per case: case_id, status, error, seconds, the read-outs, the manifest's cells (``ref_…``); text that
    a spreadsheet would run as a formula is escaped (:func:`breastseg.io.tables.csv_cell`)."""
    return write_csv_rows([_row(r) for r in records], path)
