"""Atomic writes: a crash mid-write never leaves a half-written or corrupted output behind.

Every writer in breastseg writes to a temporary name in the destination folder and renames it into place
(``os.replace`` is atomic on one file system), so an earlier good output survives a failed run.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temp_sibling(path: Path) -> Path:
    # keep the full name at the end so that writers that dispatch on the suffix (.nii.gz) still work
    return path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it.

    Works for files and for folders (a DICOM series): whatever the body writes at the yielded path
    replaces ``path`` as a whole.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(final)
    try:
        yield tmp
        if final.is_dir() and tmp.is_dir():
            old = _temp_sibling(final)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically. Returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return Path(path)
