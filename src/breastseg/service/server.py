"""``breastseg serve dicom``: the listener, the study watcher and the workers in one process.

On start, jobs left running by a process that died are queued again (:meth:`JobStore.recover`). Then: the
C-STORE SCP files what arrives; every ``poll_s`` the watcher turns studies quiet for ``quiet_s`` into jobs;
``workers`` threads run them. More worker processes — on this machine or others sharing a PostgreSQL job store
and the store folder — run ``breastseg serve worker``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from breastseg.service.jobstore import JobStore, worker_id
from breastseg.service.receiver import ListenerConfig, Receiver
from breastseg.service.worker import Worker, WorkerConfig, examine_quiet_studies

LOG = logging.getLogger("breastseg.service")


@dataclass(frozen=True)
class ServiceConfig:
    listener: ListenerConfig
    worker: WorkerConfig
    quiet_s: float = 5.0
    workers: int = 1
    poll_s: float = 0.5


class DicomService:
    """Start with :meth:`start`, stop with :meth:`stop` (or run until a signal with :meth:`serve_forever`)."""

    def __init__(self, config: ServiceConfig, jobs: JobStore) -> None:
        self.config = config
        self.jobs = jobs
        self.stopping = threading.Event()
        self.receiver = Receiver(config.listener, jobs)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        recovered = self.jobs.recover()
        if recovered:
            LOG.warning("queued again after an interruption: jobs %s", ", ".join(map(str, recovered)))
        self.receiver.start()
        for k in range(self.config.workers):
            worker = Worker(self.config.worker, self.jobs, name=worker_id(k))
            t = threading.Thread(target=worker.run, args=(self.stopping,), name=f"breastseg-worker-{k}", daemon=True)
            t.start()
            self._threads.append(t)
        watcher = threading.Thread(target=self._watch, name="breastseg-watcher", daemon=True)
        watcher.start()
        self._threads.append(watcher)

    def _watch(self) -> None:
        ticks = 0
        while not self.stopping.wait(self.config.poll_s):
            try:
                examine_quiet_studies(self.jobs, self.config.worker, self.config.quiet_s)
                ticks += 1
                if ticks * self.config.poll_s >= self.config.worker.lease_s:
                    ticks = 0
                    self.jobs.recover()
            except Exception:  # keep watching; the store may be briefly unavailable
                LOG.exception("study watcher")

    def stop(self, timeout_s: float = 120.0) -> None:
        self.receiver.stop()
        self.stopping.set()
        for t in self._threads:
            t.join(timeout_s)

    def serve_forever(self) -> None:
        self.start()
        try:
            self.stopping.wait()
        finally:
            self.stop()
