"""Where results may go: the checks every command makes on its output folder before it computes anything.

breastseg never deletes or overwrites what it did not write, and finds out that it cannot write before the
work, not after it (:func:`prepare_output_folder`):

* an output folder that equals or contains an input, or lies inside an input folder (a DICOM folder is read
  recursively), is refused always;
* two output folders of one command (``--out`` and ``--dicom-out``) must be separate, neither inside the other;
* an existing, non-empty folder that breastseg did not write (no marker file,
  :data:`~breastseg.io.atomic.MARKER_NAME`, and not a DICOM folder of breastseg's own files) is refused unless
  the user says ``overwrite`` — then breastseg's files replace those of the same names and every other file stays;
* the location must be writable (a probe file is created and removed) and have room for the expected outputs;
* temporary files that killed runs left beside the folder are removed
  (:func:`~breastseg.io.atomic.remove_stale_temporaries`).

Writing itself is atomic (:mod:`breastseg.io.atomic`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from breastseg.errors import InputError
from breastseg.io.atomic import (
    MARKER_NAME,
    read_marker,
    remove_stale_temporaries,
    written_by_breastseg,
)

#: room asked for beyond the inputs' share: a report, masks and figures
MIN_FREE_BYTES = 64 * 1024 * 1024
#: the outputs' size is taken as at most this fraction of the inputs' (compressed masks, SEG bit frames)
OUTPUT_TO_INPUT_RATIO = 0.5
_SIZE_SCAN_LIMIT = 20_000


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def input_bytes(inputs: Iterable[str | os.PathLike[str] | None]) -> int:
    """Total size of the input files and folders (folders counted up to 20,000 files)."""
    total, seen = 0, 0
    for item in inputs:
        if item is None:
            continue
        path = Path(item)
        files = path.rglob("*") if path.is_dir() else [path]
        for f in files:
            seen += 1
            if seen > _SIZE_SCAN_LIMIT:
                return total
            try:
                if f.is_file():
                    total += f.stat().st_size
            except OSError:
                continue
    return total


def expected_output_bytes(inputs: Iterable[str | os.PathLike[str] | None]) -> int:
    """Free space an output folder asks for: :data:`MIN_FREE_BYTES` plus half the inputs' size."""
    return MIN_FREE_BYTES + int(OUTPUT_TO_INPUT_RATIO * input_bytes(inputs))


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or "/")


def _breastseg_dicom_folder(folder: Path) -> bool:
    """A DICOM output folder breastseg wrote (no marker there): every entry a DICOM file breastseg made."""
    entries = list(folder.iterdir())
    return bool(entries) and all(written_by_breastseg(p) for p in entries)


def check_writable(out: Path, need_bytes: int, option: str = "--out") -> None:
    """Refuse ``out`` (a folder, existing or to be made) when nothing can be written there or the disk lacks
    ``need_bytes`` of free space. The check writes and removes one probe file."""
    base = _nearest_existing(out)
    if not base.is_dir():
        raise InputError(f"{option} {out}: {base} is a file, not a folder; choose another output folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=base)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{option} {out}: cannot write in {base} ({reason}); choose a writable folder") from exc
    os.close(fd)
    Path(probe).unlink()
    free = shutil.disk_usage(base).free
    if free < need_bytes:
        raise InputError(
            f"{option} {out}: only {free / 2**20:.0f} MiB free on that disk, and the outputs need about "
            f"{need_bytes / 2**20:.0f} MiB; free some space or choose another disk"
        )


def check_apart_from_inputs(
    out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None], option: str = "--out"
) -> None:
    """Refuse an output folder that equals or contains one of ``inputs``, or lies inside an input folder."""
    out_path = Path(out)
    target = out_path.resolve()
    for item in (Path(i) for i in inputs if i is not None):
        source = item.resolve()
        if _inside(source, target):
            what = "is" if source == target else "contains"
            raise InputError(
                f"{option} {out_path} {what} the input {item}; breastseg never writes over its inputs: choose a "
                "new output folder"
            )
        if item.is_dir() and _inside(target, source):
            raise InputError(
                f"{option} {out_path} lies inside the input folder {item}, which is read as a whole; choose an output "
                "folder outside it"
            )


def prepare_output_folder(
    out: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    overwrite: bool = False,
    separate_from: Iterable[tuple[str, str | os.PathLike[str] | None]] = (),
    option: str = "--out",
    need_bytes: int | None = None,
) -> Path:
    """Check an output folder before any computation (see the module docstring) and return it.

    Args:
        out: the folder the command will write (made when missing).
        inputs: the files and folders the command reads.
        overwrite: allow writing into an existing folder that breastseg did not write.
        separate_from: other outputs of the same command, as ``(option, path)``: neither may lie inside the other.
        option: the option's name, for messages.
        need_bytes: free space required; default 64 MiB plus half the inputs' size.

    Raises:
        InputError: naming the folder, what is wrong and what to do.
    """
    out_path = Path(out)
    target = out_path.resolve()
    input_list = [Path(i) for i in inputs if i is not None]
    check_apart_from_inputs(out_path, input_list, option)
    for other_option, other in separate_from:
        if other is None:
            continue
        other_target = Path(other).resolve()
        if _inside(other_target, target) or _inside(target, other_target):
            raise InputError(
                f"{option} {out_path} and {other_option} {other} must be separate folders, neither inside the other"
            )
    if target.exists() and not target.is_dir():
        raise InputError(f"{option} {out_path}: is a file; give a folder")
    if target.is_dir():
        remove_stale_temporaries(target)
        foreign = sorted(p.name for p in target.iterdir() if p.name != MARKER_NAME)
        if foreign and not overwrite and read_marker(target) is None and not _breastseg_dicom_folder(target):
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise InputError(
                f"{option} {out_path}: the folder exists and holds files breastseg did not write ({shown}); choose a "
                "new folder, or add --overwrite to write into it (files of the same names are replaced, others kept)"
            )
    remove_stale_temporaries(target.parent)
    if need_bytes is None:
        need_bytes = expected_output_bytes(input_list)
    check_writable(target, need_bytes, option)
    return out_path


def prepare_output_file(
    out: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    option: str = "--out",
    need_bytes: int = MIN_FREE_BYTES,
) -> Path:
    """The file counterpart of :func:`prepare_output_folder`: ``out`` may not be one of the inputs nor lie inside
    an input folder, must not be a folder, and its folder must be writable with room for ``need_bytes``."""
    out_path = Path(out)
    target = out_path.resolve()
    for item in (Path(i) for i in inputs if i is not None):
        source = item.resolve()
        if source == target or (item.is_dir() and _inside(target, source)):
            raise InputError(f"{option} {out_path}: would overwrite the input {item}; choose another file name")
    if target.is_dir():
        raise InputError(f"{option} {out_path}: is a folder; give a file name")
    remove_stale_temporaries(target.parent)
    check_writable(target.parent, need_bytes, option)
    return out_path
