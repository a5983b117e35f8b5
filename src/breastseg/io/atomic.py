"""Atomic writes: a crash mid-write never leaves a half-written or corrupted output behind, and a finished write
never deletes what breastseg did not write.

Every writer in breastseg writes to a temporary name in the destination folder and renames it into place
(``os.replace`` is atomic on one file system), so an earlier good output survives a failed run. A folder
(an assessment's outputs, a DICOM series) is built whole under a temporary name; when the destination does not
exist yet it is renamed into place, otherwise its entries are moved in one by one (:func:`commit_folder`):
entries of the same name are replaced, entries that an earlier run of the same writer put there and this one did
not are removed, and everything else in the folder is left as it was. Each committed folder gets a marker file
(:data:`MARKER_NAME`) listing the entries breastseg wrote there — except DICOM folders meant to be sent as they are,
whose files carry Manufacturer "breastseg" instead; :mod:`breastseg.io.outputs` uses either to tell breastseg's own
folders from anybody else's.

Temporary names carry the writer's process id (``.tmp-<pid>-<hex>-<name>``), so that a later run can tell the
leftovers of a killed run from the work of one still running (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: the file in every output folder breastseg committed, listing what it wrote there
MARKER_NAME = ".breastseg-output.json"
_TEMP = re.compile(r"^\.tmp-(?:(?P<pid>\d+)-[0-9a-f]{8}|[0-9a-f]{12})-")
#: temporary names without a process id (earlier versions of breastseg) count as stale after this long
_LEGACY_TEMP_AGE_S = 24 * 3600.0


def _temp_sibling(path: Path) -> Path:
    # keep the full name at the end so that writers that dispatch on the suffix (.nii.gz) still work
    return path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(
    path: str | os.PathLike[str], producer: str | None = None, dicom_outputs: tuple[str, ...] | None = None
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it to ``path``, on error delete it.

    Works for files and for folders (a DICOM series, an assessment's outputs): a file replaces ``path``; a
    folder is committed by :func:`commit_folder` (``producer``, ``dicom_outputs``: see there), which never
    deletes files that breastseg did not write.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(final)
    try:
        yield tmp
        if tmp.is_dir():
            commit_folder(tmp, final, producer, dicom_outputs)
        else:
            tmp.replace(final)
    finally:
        _remove(tmp)


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of an output folder breastseg committed, or ``None`` (no marker, or not one of ours)."""
    try:
        doc = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("written_by") != "breastseg" or not isinstance(doc.get("entries"), list):
        return None
    if not isinstance(doc.get("producers"), dict):
        doc["producers"] = {}
    return doc


def write_marker(
    folder: Path,
    entries: Iterable[str],
    merge: bool = False,
    producer: str | None = None,
    drop: Iterable[str] = (),
) -> Path:
    """Mark ``folder`` as breastseg's, listing the top-level ``entries`` it wrote there and, with ``producer``,
    which writer wrote them (``merge``: added to what an earlier marker lists, for a folder that several steps
    or commands write into; ``drop``: names removed from the folder)."""
    from breastseg._version import __version__

    entries = list(entries)
    names = set(entries) - {MARKER_NAME}
    producers: dict[str, str] = {}
    previous = read_marker(folder) if merge else None
    if previous:
        names |= {str(n) for n in previous["entries"]}
        producers.update({str(k): str(v) for k, v in previous["producers"].items()})
    names -= set(drop)
    if producer is not None:
        producers.update(dict.fromkeys(set(entries) - {MARKER_NAME}, producer))
    doc = {
        "written_by": "breastseg",
        "version": __version__,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "entries": sorted(names),
        "producers": {k: producers[k] for k in sorted(producers) if k in names},
    }
    return write_json(doc, folder / MARKER_NAME)


def commit_folder(
    tmp: Path, final: Path, producer: str | None = None, dicom_outputs: tuple[str, ...] | None = None
) -> None:
    """Move the finished folder ``tmp`` to ``final``.

    A new ``final`` is one rename. An existing one receives ``tmp``'s entries one by one (each a rename); entries
    of the same names are replaced, and entries that the same ``producer`` (a command's writer, say
    ``"specimen assess"``) wrote there before and did not write now are removed — a mask from an earlier run must
    not outlive it. Everything else is kept: other commands' outputs (a phantom's images beside an assessment)
    and every file breastseg did not write (:mod:`breastseg.io.outputs` decides beforehand whether writing into
    such a folder is allowed). Replaced and removed entries are deleted only once all new ones are in place.

    ``dicom_outputs``: the folder is a DICOM folder meant to be sent as it is (a SEG and SR for the PACS, a
    series), so it gets no marker file (``storescu +sd`` stops at a file that is not DICOM); of these names, the
    ones this commit does not write are removed when they are DICOM files breastseg made (Manufacturer
    "breastseg"), so that a SEG from an earlier run never goes to the PACS with a later SR.
    """
    entries = [e.name for e in tmp.iterdir() if e.name != MARKER_NAME]
    marked = dicom_outputs is None
    if not final.exists():
        if marked:
            write_marker(tmp, entries, producer=producer)
        tmp.rename(final)
        return
    if marked:
        previous = read_marker(final)
        written_before = previous["producers"].items() if previous and producer is not None else []
        stale = [name for name, who in written_before if who == producer and name not in entries and "/" not in name]
    else:
        stale = [n for n in dicom_outputs or () if n not in entries and written_by_breastseg(final / n)]
    trash = _temp_sibling(final)
    trash.mkdir()
    try:
        for name in entries:
            src, dst = tmp / name, final / name
            if (dst.exists() or dst.is_symlink()) and (dst.is_dir() or src.is_dir()):
                dst.rename(trash / name)  # a folder is replaced whole; os.replace cannot put a file over a folder
            src.replace(dst)
        for name in stale:
            old = final / name
            if old.exists() or old.is_symlink():
                old.rename(trash / name)
        if marked:
            write_marker(final, entries, merge=True, producer=producer, drop=stale)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def written_by_breastseg(path: Path) -> bool:
    """True for a DICOM file that breastseg wrote (Manufacturer (0008,0070) "breastseg"; every writer sets it)."""
    import pydicom

    if not path.is_file() or path.is_symlink():
        return False
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Manufacturer"])
    except Exception:  # not DICOM, or unreadable: not ours
        return False
    return str(ds.get("Manufacturer", "")) == "breastseg"


def remove_written(folder: Path) -> bool:
    """Remove what breastseg wrote into ``folder`` (the entries its marker lists, then the marker), and the folder
    itself when nothing else is left in it. Anything the marker does not list stays where it is.

    Returns whether the folder is gone; ``False`` (nothing touched) for a folder without breastseg's marker.
    """
    marker = read_marker(folder)
    if marker is None:
        return False
    for name in marker["entries"]:
        name = str(name)
        if name not in ("", ".", "..") and "/" not in name and "\\" not in name:
            _remove(folder / name)
    (folder / MARKER_NAME).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:  # something breastseg did not write is still there: the folder stays, without our marker
        return False
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files and folders that killed runs of breastseg left in ``folder`` (not recursive).

    A temporary name holds its writer's process id: it is stale when no such process runs on this machine.
    Returns what was removed.
    """
    removed: list[Path] = []
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return removed
    now = time.time()
    for name in names:
        match = _TEMP.match(name)
        if not match:
            continue
        path = folder / name
        pid = match.group("pid")
        if pid is not None and _process_alive(int(pid)):
            continue
        if pid is None:
            try:
                if now - path.lstat().st_mtime < _LEGACY_TEMP_AGE_S:
                    continue
            except OSError:
                continue
        _remove(path)
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:
        return False
    return True


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically. Returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return Path(path)
