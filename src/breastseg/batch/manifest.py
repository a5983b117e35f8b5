"""A cohort manifest: one CSV row per case — its id, its input files (relative to the CSV) and per-case options.

Columns depend on the workflow (:data:`breastseg.batch.runners.RUNNERS`); every workflow needs ``case_id``
(letters, digits, ``-``, ``_``, ``.``: it names the case's output folder). Input paths are resolved against the
manifest's folder and must exist; empty optional cells mean "not given". Other columns are kept and copied to
the cohort table (reference values, say, ``margin_status`` from pathology).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breastseg.errors import InputError
from breastseg.io.tables import read_csv_rows

_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Case:
    """One row: its id, input paths (absolute) by column, and the other cells as text."""

    case_id: str
    inputs: dict[str, Path]
    cells: dict[str, str] = field(default_factory=dict)


def read_manifest(
    path: str | Path, path_columns: Sequence[str], required: Sequence[str], what: str = "cohort manifest"
) -> list[Case]:
    """Cases of a manifest. ``path_columns`` are files or folders (``required`` ones must be filled).

    Raises:
        InputError: a missing column, an empty required cell, a file that does not exist, a bad or repeated
            case id — naming the manifest and the line.
    """
    path = Path(path)
    rows = read_csv_rows(path, ["case_id", *required], what)
    cases: list[Case] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        case_id = (row.get("case_id") or "").strip()
        if not _CASE_ID.match(case_id):
            raise InputError(
                f"{path}, line {line}: case_id {case_id!r} must be letters, digits, '.', '-' or '_' (it names a folder)"
            )
        if case_id in seen:
            raise InputError(f"{path}, line {line}: case_id {case_id!r} appears twice")
        seen.add(case_id)
        inputs: dict[str, Path] = {}
        for column in path_columns:
            cell = (row.get(column) or "").strip()
            if not cell:
                if column in required:
                    raise InputError(f"{path}, line {line}: {column} is empty")
                continue
            file = (path.parent / cell).resolve()
            if not file.exists():
                raise InputError(f"{path}, line {line}: {column} {file} does not exist")
            inputs[column] = file
        cells = {k: (v or "").strip() for k, v in row.items() if k not in path_columns and k != "case_id" and k}
        cases.append(Case(case_id, inputs, cells))
    return cases


def _hash_path(digest: Any, path: Path) -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with f.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)


def content_hash(case: Case, models: Sequence[Path], options: dict[str, Any]) -> str:
    """SHA-256 over the case's input files (contents and names), the model files and the options: a rerun skips a
    case whose hash is unchanged."""
    digest = hashlib.sha256()
    for column in sorted(case.inputs):
        digest.update(column.encode())
        _hash_path(digest, case.inputs[column])
    for model in models:
        _hash_path(digest, Path(model))
    digest.update(json.dumps({"options": options, "cells": case.cells}, sort_keys=True, default=str).encode())
    return digest.hexdigest()
