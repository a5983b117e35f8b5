"""Real servers for tests, started and stopped by the tests themselves, on loopback only."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def apt_install(package: str) -> None:
    """A Debian package, when we are root and apt is there (CI on a fresh machine); silently nothing otherwise.

    The suite runs in parallel workers: one lock file makes them take turns, since two apt-get runs at once fail
    on dpkg's own lock.
    """
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with (Path(tempfile.gettempdir()) / "breastseg-tests-apt.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=300, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", package], check=False, capture_output=True, timeout=600, env=env
        )


def _install_postgres() -> None:
    apt_install("postgresql")


def dciodvfy() -> str:
    """dicom3tools' DICOM validator (installed from Debian when missing), or the test is skipped."""
    if not shutil.which("dciodvfy"):
        apt_install("dicom3tools")
    found = shutil.which("dciodvfy")
    if not found:
        pytest.skip("dciodvfy not found and could not be installed (apt-get install dicom3tools)")
    return found


@contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1; yields ``postgresql://breastseg@127.0.0.1:PORT/breastseg``."""
    bindir = _postgres_bin()
    if bindir is None:
        _install_postgres()
        bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found and could not be installed (apt-get install postgresql)")
    as_user: list[str] = []
    if os.geteuid() == 0:
        # postgres refuses to run as root: the package's system user runs it, from a folder it can reach
        # (pytest's temporary folders are private to root)
        data = Path(tempfile.mkdtemp(prefix="breastseg-pg-")) / "pgdata"
        data.mkdir()
        shutil.chown(data.parent, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    else:
        data = root / "pgdata"
        data.mkdir(parents=True)
    port = free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "breastseg"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "-l",
            str(data / "server.log"),
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        subprocess.run(
            [*as_user, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "breastseg", "breastseg"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield f"postgresql://breastseg@127.0.0.1:{port}/breastseg"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=120,
        )


def _dcmtk(name: str) -> str | None:
    """``name`` from DCMTK on the PATH, passing over same-named commands of other packages (pynetdicom's apps put
    a ``storescu`` with other options into a virtual environment's bin)."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which(name, path=folder)
        if found is None:
            continue
        try:
            version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "dcmtk" in version.lower():
            return found
    return None


def dcmtk_tool(name: str) -> str:
    """A DCMTK command (``storescu``, ``echoscu``), installed from Debian when missing, or the test is skipped."""
    if not _dcmtk(name):
        apt_install("dcmtk")
    found = _dcmtk(name)
    if not found:
        pytest.skip(f"{name} not found and could not be installed (apt-get install dcmtk)")
    return found


@dataclass(frozen=True)
class Orthanc:
    """A running Orthanc: its DICOM node and its REST API (loopback)."""

    ae_title: str
    dicom_port: int
    http_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def node(self) -> str:
        return f"{self.ae_title}@127.0.0.1:{self.dicom_port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: Any) -> Any:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def file(self, instance_id: str) -> bytes:
        with urllib.request.urlopen(f"{self.url}/instances/{instance_id}/file", timeout=30) as r:
            return bytes(r.read())

    def series_of_study(self, study_uid: str) -> list[dict[str, Any]]:
        """Every series Orthanc holds for a StudyInstanceUID (with its MainDicomTags and Instances)."""
        found = self.post("/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}})
        return [self.get(f"/series/{s}") for study in found for s in self.get(f"/studies/{study}")["Series"]]


@contextmanager
def orthanc_server(root: Path) -> Iterator[Orthanc]:
    """A throw-away Orthanc PACS (Debian package ``orthanc``): HTTP on loopback only, no plugins, storage in
    ``root``; stopped at exit."""
    binary = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
    if binary is None:
        apt_install("orthanc")
        binary = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
    if binary is None:
        pytest.skip("Orthanc not found and could not be installed (apt-get install orthanc)")
    root.mkdir(parents=True, exist_ok=True)
    server = Orthanc("ORTHANC", free_port(), free_port())
    config = {
        "Name": "breastseg-test",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "storage"),
        "DicomAet": server.ae_title,
        "DicomPort": server.dicom_port,
        "HttpPort": server.http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowStore": True,
        "Plugins": [],
        "StableAge": 1,
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = (root / "orthanc.log").open("w")
    proc = subprocess.Popen([binary, str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.get("/system")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Orthanc did not start; see {root / 'orthanc.log'}") from None
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def dask_cluster(root: Path, workers: int = 2) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A Dask scheduler and ``workers`` single-threaded workers (no nanny: killing one kills it) on loopback;
    yields the scheduler address and the processes (scheduler first)."""
    import sys

    dask = Path(sys.executable).parent / "dask"
    if not dask.exists():
        pytest.skip("the dask command is not installed (pip install 'dask[distributed]')")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    root.mkdir(parents=True, exist_ok=True)
    logs = [(root / f"dask-{k}.log").open("wb") for k in range(workers + 1)]
    procs = [
        subprocess.Popen(
            [str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
    ]
    for k in range(1, workers + 1):
        procs.append(
            subprocess.Popen(
                [str(dask), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{k}"],
                stdout=logs[k],
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
        )
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, procs
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
