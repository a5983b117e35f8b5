"""CSV tables with required columns (manifests): rows as dicts, errors that name the file."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from breastseg.errors import InputError


def read_csv_rows(path: str | Path, required: Sequence[str], what: str = "table") -> list[dict[str, str]]:
    """Rows of the CSV at ``path``; raises :class:`InputError` naming the file when it cannot be read, lacks
    one of the ``required`` columns or has no rows (``what`` names the table in the message)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: {what} lacks columns {missing}; needs {list(required)}")
            rows = list(reader)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc})") from exc
    if not rows:
        raise InputError(f"{path}: the {what} has no rows")
    return rows
