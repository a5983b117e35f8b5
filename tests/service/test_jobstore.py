"""The job store on SQLite and on a real PostgreSQL server: no job is ever run twice however many worker
processes claim at once, jobs of dead workers come back, failures are retried, every rule the same on both."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from breastseg.errors import InputError
from breastseg.service.jobstore import JobStore, worker_id
from tests.servers import postgres_server


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "jobs.sqlite")
    url = str(request.getfixturevalue("postgres_url"))
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:  # a fresh schema for each test
        conn.execute("DROP TABLE IF EXISTS jobs, studies, events")
    return url


def _queue(store: JobStore, n: int) -> list[int]:
    ids = []
    for k in range(n):
        uid = f"1.2.3.{k}"
        store.file_received(uid, f"P{k}", "SCANNER", time.time() - 10)
        (study,) = [s for s in store.quiet_studies(1.0) if s.study_uid == uid]
        ids.append(store.examined(study))
    return ids


def _claim_all(url: str, name: str, go: Any, out: mp.Queue) -> None:  # type: ignore[type-arg]
    store = JobStore(url)
    go.wait(60)  # all workers start claiming together
    claimed = []
    while (job := store.claim(name, lease_s=60)) is not None:
        claimed.append(job.id)
        time.sleep(0.005)  # "work", so that the claims interleave
        store.finish(job.id, name, None, {"by": name})
    out.put(claimed)


def test_concurrent_workers_never_share_a_job(store_url: str) -> None:
    store = JobStore(store_url)
    ids = _queue(store, 40)
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    go = ctx.Barrier(4)
    procs = [ctx.Process(target=_claim_all, args=(store_url, f"w{k}", go, out)) for k in range(4)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    flat = sorted(j for c in claimed for j in c)
    assert flat == sorted(ids)  # every job exactly once
    assert all(job.state == "done" for job in store.jobs(limit=100))
    assert sum(1 for c in claimed if c) >= 2  # the work was really shared


def test_a_dead_workers_job_is_queued_again_then_fails_after_max_attempts(store_url: str) -> None:
    store = JobStore(store_url, max_attempts=2)
    (job_id,) = _queue(store, 1)
    # a worker process on this machine that has died (a finished child's pid)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{worker_id().split(':')[0]}:{int(child.stdout)}#0"
    assert store.claim(dead, lease_s=3600) is not None
    assert store.recover() == [job_id]  # long lease, but its process is gone
    job = store.job(job_id)
    assert job is not None and job.state == "queued" and job.attempts == 1
    # a live worker elsewhere whose lease ran out
    assert store.claim("otherhost:1", lease_s=0.01) is not None
    assert store.recover(now=time.time() + 1) == [job_id]
    job = store.job(job_id)
    assert job is not None and job.state == "failed" and "interrupted 2 times" in str(job.error)
    # a live process keeps its job
    (live_id,) = _queue(store, 1)
    assert store.claim(worker_id(0), lease_s=3600) is not None
    assert store.recover() == []
    assert store.job(live_id).state == "running"  # type: ignore[union-attr]


def test_retry_and_rejected_studies(store_url: str) -> None:
    store = JobStore(store_url)
    store.file_received("1.2.9", "P9", "SCANNER", time.time() - 5)
    (study,) = store.quiet_studies(1.0)
    rejected = store.examined(study, "rejected", "no PET series in the study (received: CT (80 images))")
    assert store.quiet_studies(1.0) == []  # examined up to its last file
    store.file_received("1.2.9", "P9", "SCANNER", time.time() - 3)  # more files: examined again
    assert [s.study_uid for s in store.quiet_studies(1.0)] == ["1.2.9"]
    assert store.claim("w", 60) is None  # a rejected job is not run
    store.retry(rejected)
    job = store.claim("w", 60)
    assert job is not None and job.id == rejected and job.error is None
    store.fail(job.id, "w", "reading the CT: truncated pixel data")
    failed = store.job(job.id)
    assert failed is not None and failed.state == "failed" and "truncated" in str(failed.error)
    assert store.retry(job.id).state == "queued"
    with pytest.raises(InputError, match=r"job .* is queued; only failed, not assessable or rejected"):
        store.retry(job.id)
    with pytest.raises(InputError, match="no job 999"):
        store.retry(999)


def test_events_keep_the_reason(store_url: str) -> None:
    store = JobStore(store_url)
    store.event("rejected-association", "association from AE 'INTRUDER' at 127.0.0.1 rejected")
    ((_, kind, study, message),) = store.events()
    assert kind == "rejected-association" and study is None and "INTRUDER" in message
