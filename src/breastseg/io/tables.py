"""CSV tables: read with required columns (manifests), errors that name the file; written atomically, cells safely.

Manifests saved by spreadsheet programs often begin with a UTF-8 byte-order mark; it is dropped on reading.
Text written into a CSV that begins like a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) is prefixed
with an apostrophe, so that a spreadsheet shows it instead of running it (CSV injection); numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from breastseg.errors import InputError
from breastseg.io.atomic import atomic_path

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: ``None`` → empty; text that a spreadsheet would run as a formula gets a leading
    apostrophe (a plain number written as text, ``-0.5``, is left alone); everything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def read_csv_rows(path: str | Path, required: Sequence[str], what: str = "table") -> list[dict[str, str]]:
    """Rows of the CSV at ``path``; raises :class:`InputError` naming the file when it cannot be read, lacks
    one of the ``required`` columns or has no rows (``what`` names the table in the message)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: {what} lacks columns {missing}; needs {list(required)}")
            rows = list(reader)
    except (OSError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from exc
    if not rows:
        raise InputError(f"{path}: the {what} has no rows")
    return rows


def write_csv_rows(rows: Sequence[dict[str, Any]], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` to ``path`` as UTF-8 CSV, atomically (a crash leaves the earlier file, or none).

    Columns: ``columns`` when given (keys outside them are left out, missing cells are empty), else the union of
    the rows' keys in first-seen order. Every cell goes through :func:`csv_cell`.
    """
    names = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    if names:
        writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return path
