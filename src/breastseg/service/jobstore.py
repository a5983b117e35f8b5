"""The job store: received studies, jobs and their states, and service events, in SQLite or PostgreSQL.

One schema, two engines: a SQLite file by default (one machine), PostgreSQL (``postgresql://…``) when several
worker processes — on one machine or several — share the work. A job is claimed in one atomic statement
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``), so no two workers ever run the same job.

Job states: ``queued`` → ``running`` → ``done`` | ``failed``; ``rejected`` for a study that cannot be assessed
(say, a CT without PET), with the reason. A running job holds a lease that its worker renews; a job whose
worker died — its lease ran out, or its process is gone from this machine — is queued again
(:meth:`JobStore.recover`), up to ``max_attempts`` times, then failed with the reason.

Times are Unix seconds (float). Nothing here stores patient names: patient ID and UIDs only.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breastseg.errors import InputError, MissingExtra

JOB_STATES = ("queued", "running", "done", "failed", "not assessable", "rejected")
#: the end states of a job that ran but gave no read-out: a bug or bad input ("failed"), or inputs that hold no
#: usable signal ("not assessable", :class:`breastseg.sanity.NotAssessable`)
UNFINISHED_STATES = ("failed", "not assessable")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS studies (
        study_uid TEXT PRIMARY KEY,
        patient_id TEXT,
        calling_ae TEXT,
        first_received DOUBLE PRECISION NOT NULL,
        last_received DOUBLE PRECISION NOT NULL,
        files INTEGER NOT NULL DEFAULT 0,
        examined_received DOUBLE PRECISION
    )""",
    """CREATE TABLE IF NOT EXISTS jobs (
        id {serial},
        study_uid TEXT NOT NULL,
        state TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        last_received DOUBLE PRECISION,
        started DOUBLE PRECISION,
        finished DOUBLE PRECISION,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        lease_until DOUBLE PRECISION,
        error TEXT,
        result_dir TEXT,
        summary TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id)",
    """CREATE TABLE IF NOT EXISTS events (
        id {serial},
        time DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        study_uid TEXT,
        message TEXT NOT NULL
    )""",
)


@dataclass(frozen=True)
class Job:
    """One row of ``jobs`` (times in Unix seconds; ``summary``: the read-out and timings once done)."""

    id: int
    study_uid: str
    state: str
    created: float
    updated: float
    last_received: float | None
    started: float | None
    finished: float | None
    attempts: int
    worker: str | None
    lease_until: float | None
    error: str | None
    result_dir: str | None
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class Study:
    """One received study: who sent it, when, how many files."""

    study_uid: str
    patient_id: str | None
    calling_ae: str | None
    first_received: float
    last_received: float
    files: int
    examined_received: float | None


def worker_id(thread: int | None = None) -> str:
    """``host:pid`` (``host:pid#k`` for worker thread ``k``) — how a job names who runs it; :meth:`JobStore.recover`
    reads the process id back to find jobs of processes that died."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if thread is None else f"{base}#{thread}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_job_store(store: str | Path, db: str | None = None) -> JobStore:
    """The job store of a service folder: ``db`` (a SQLite file or ``postgresql://…``), else ``STORE/jobs.sqlite``."""
    return JobStore(db or Path(store) / "jobs.sqlite")


class JobStore:
    """Jobs, studies and events in SQLite (a file path, or ``sqlite:///path``) or PostgreSQL (``postgresql://…``).

    Thread-safe: each thread gets its own connection. Every method is one short transaction.
    """

    def __init__(self, url: str | Path, max_attempts: int = 3) -> None:
        text = str(url)
        self.url = text
        self.max_attempts = max_attempts
        self.postgres = text.startswith(("postgresql://", "postgres://"))
        if not self.postgres:
            path = Path(text.removeprefix("sqlite:///").removeprefix("sqlite://"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sqlite_path = path
        self._local = threading.local()
        with self._cursor() as cur:
            serial = "SERIAL PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
            for statement in _SCHEMA:
                cur.execute(statement.format(serial=serial))

    # -- connections -------------------------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.postgres:
            try:
                import psycopg
            except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
                raise MissingExtra("service", "psycopg") from exc
            try:
                return psycopg.connect(self.url, autocommit=False, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise InputError(f"job store {self.url}: cannot connect to PostgreSQL ({exc})") from exc
        conn = sqlite3.connect(self._sqlite_path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        if self.postgres:
            with conn.transaction(), conn.cursor() as cur:
                yield _Cursor(cur, postgres=True)
        else:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield _Cursor(cur, postgres=False)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- studies -------------------------------------------------------------------------------------------------
    def file_received(self, study_uid: str, patient_id: str | None, calling_ae: str | None, when: float) -> None:
        """Record one stored file of a study."""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE studies SET last_received = ?, files = files + 1, calling_ae = ? WHERE study_uid = ?",
                (when, calling_ae, study_uid),
            )
            if cur.rowcount == 0:
                cur.execute(
                    "INSERT INTO studies (study_uid, patient_id, calling_ae, first_received, last_received, files) "
                    "VALUES (?, ?, ?, ?, ?, 1)",
                    (study_uid, patient_id, calling_ae, when, when),
                )

    def quiet_studies(self, quiet_s: float, now: float | None = None) -> list[Study]:
        """Studies with files not yet examined and none received for ``quiet_s`` seconds."""
        now = time.time() if now is None else now
        with self._cursor() as cur:
            cur.execute(
                "SELECT * FROM studies WHERE (examined_received IS NULL OR examined_received < last_received) "
                "AND last_received <= ? ORDER BY last_received",
                (now - quiet_s,),
            )
            return [Study(*row) for row in cur.fetchall()]

    def study(self, study_uid: str) -> Study | None:
        with self._cursor() as cur:
            cur.execute("SELECT * FROM studies WHERE study_uid = ?", (study_uid,))
            row = cur.fetchone()
        return Study(*row) if row else None

    def examined(self, study: Study, state: str = "queued", error: str | None = None) -> int:
        """Mark ``study`` examined up to its last file and add a job for it (``queued``, or ``rejected`` with the
        reason). Returns the job id."""
        if state not in ("queued", "rejected"):
            raise ValueError(f"a new job is queued or rejected, not {state!r}")
        now = time.time()
        with self._cursor() as cur:
            cur.execute(
                "UPDATE studies SET examined_received = ? WHERE study_uid = ?", (study.last_received, study.study_uid)
            )
            cur.execute(
                "INSERT INTO jobs (study_uid, state, created, updated, last_received, error) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (study.study_uid, state, now, now, study.last_received, error),
            )
            return int(cur.fetchone()[0])

    # -- jobs ----------------------------------------------------------------------------------------------------
    def claim(self, worker: str, lease_s: float) -> Job | None:
        """Atomically take the oldest queued job (or one whose lease ran out) for ``worker``; ``None`` if none."""
        now = time.time()
        lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE jobs SET state = 'running', worker = ?, lease_until = ?, attempts = attempts + 1, "
                "started = ?, updated = ?, error = NULL WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
                f"ORDER BY id LIMIT 1{lock}) RETURNING *",
                (worker, now + lease_s, now, now),
            )
            row = cur.fetchone()
        return _job(row) if row else None

    def renew(self, job_id: int, worker: str, lease_s: float) -> bool:
        """Extend a running job's lease; False when the job is no longer this worker's."""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND state = 'running'",
                (time.time() + lease_s, job_id, worker),
            )
            return bool(cur.rowcount)

    def finish(self, job_id: int, worker: str, result_dir: str | None, summary: dict[str, Any]) -> None:
        now = time.time()
        with self._cursor() as cur:
            cur.execute(
                "UPDATE jobs SET state = 'done', finished = ?, updated = ?, lease_until = NULL, result_dir = ?, "
                "summary = ? WHERE id = ? AND worker = ?",
                (now, now, result_dir, json.dumps(summary), job_id, worker),
            )

    def fail(
        self, job_id: int, worker: str | None, error: str, result_dir: str | None = None, state: str = "failed"
    ) -> None:
        """End a job without a read-out: ``state`` "failed" or "not assessable" (:data:`UNFINISHED_STATES`)."""
        if state not in UNFINISHED_STATES:
            raise ValueError(f"a job ends unfinished as one of {UNFINISHED_STATES}, not {state!r}")
        now = time.time()
        with self._cursor() as cur:
            cur.execute(
                "UPDATE jobs SET state = ?, finished = ?, updated = ?, lease_until = NULL, error = ?, "
                "result_dir = COALESCE(?, result_dir) WHERE id = ? AND (worker = ? OR CAST(? AS TEXT) IS NULL)",
                (state, now, now, error, result_dir, job_id, worker, worker),
            )

    def release(self, job_id: int, worker: str) -> None:
        """Give a running job back to the queue (a worker stopping before it finished)."""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL, updated = ?, "
                "attempts = attempts - 1 WHERE id = ? AND worker = ? AND state = 'running'",
                (time.time(), job_id, worker),
            )

    def retry(self, job_id: int) -> Job:
        """Queue a failed, not assessable or rejected job again (``breastseg jobs retry``)."""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE jobs SET state = 'queued', error = NULL, worker = NULL, lease_until = NULL, attempts = 0, "
                "updated = ? WHERE id = ? AND state IN ('failed', 'not assessable', 'rejected') RETURNING *",
                (time.time(), job_id),
            )
            row = cur.fetchone()
        if row is None:
            job = self.job(job_id)
            if job is None:
                raise InputError(f"no job {job_id} in {self.url}")
            raise InputError(f"job {job_id} is {job.state}; only failed, not assessable or rejected jobs are retried")
        return _job(row)

    def recover(self, now: float | None = None) -> list[int]:
        """Queue again the running jobs whose worker is gone: its lease ran out, or it was a process on this
        machine that no longer exists. A job interrupted ``max_attempts`` times fails instead. Returns their ids."""
        now = time.time() if now is None else now
        host = socket.gethostname()
        with self._cursor() as cur:
            cur.execute("SELECT id, worker, lease_until, attempts FROM jobs WHERE state = 'running'")
            rows = cur.fetchall()
        dead = []
        for job_id, worker, lease_until, _attempts in rows:
            name, _, rest = str(worker or "").partition(":")
            pid = rest.split("#")[0]
            gone_here = name == host and pid.isdigit() and not _pid_alive(int(pid))
            if gone_here or (lease_until is not None and lease_until < now):
                dead.append(int(job_id))
        with self._cursor() as cur:
            for job_id in dead:
                cur.execute(
                    "UPDATE jobs SET state = CASE WHEN attempts >= ? THEN 'failed' ELSE 'queued' END, "
                    "error = CASE WHEN attempts >= ? THEN ? ELSE NULL END, worker = NULL, lease_until = NULL, "
                    "updated = ? WHERE id = ? AND state = 'running'",
                    (
                        self.max_attempts,
                        self.max_attempts,
                        f"interrupted {self.max_attempts} times (the worker died each time); retry when fixed",
                        now,
                        job_id,
                    ),
                )
        return dead

    def job(self, job_id: int) -> Job | None:
        with self._cursor() as cur:
            cur.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
            row = cur.fetchone()
        return _job(row) if row else None

    def jobs(self, states: Sequence[str] | None = None, limit: int = 100) -> list[Job]:
        """The newest jobs first (optionally of ``states`` only)."""
        with self._cursor() as cur:
            if states:
                marks = ", ".join("?" for _ in states)
                cur.execute(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id DESC LIMIT ?", (*states, limit))
            else:
                cur.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
            return [_job(row) for row in cur.fetchall()]

    # -- events --------------------------------------------------------------------------------------------------
    def event(self, kind: str, message: str, study_uid: str | None = None) -> None:
        """Record something the service refused or noticed (an unknown AE, a malformed file), with the reason."""
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO events (time, kind, study_uid, message) VALUES (?, ?, ?, ?)",
                (time.time(), kind, study_uid, message),
            )

    def events(self, limit: int = 100) -> list[tuple[float, str, str | None, str]]:
        with self._cursor() as cur:
            cur.execute("SELECT time, kind, study_uid, message FROM events ORDER BY id DESC LIMIT ?", (limit,))
            return [(float(t), str(k), s, str(m)) for t, k, s, m in cur.fetchall()]


class _Cursor:
    """A DB-API cursor that takes ``?`` placeholders on both engines (psycopg wants ``%s``)."""

    def __init__(self, cur: Any, postgres: bool) -> None:
        self._cur = cur
        self._postgres = postgres

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(sql.replace("?", "%s") if self._postgres else sql, tuple(params))

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall())


def _job(row: Sequence[Any]) -> Job:
    values = list(row)
    values[-1] = json.loads(values[-1]) if values[-1] else None
    return Job(*values)
