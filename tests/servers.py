"""Real servers for tests, started and stopped by the tests themselves, on loopback only."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
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
    """A Debian package, when we are root and apt is there (CI on a fresh machine); silently nothing otherwise."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=300, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False, capture_output=True, timeout=600, env=env)


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
    port = _free_port()
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
