"""The model-file format the workflows share: one ``torch.save`` of a JSON header and plain tensors, loaded with
``weights_only=True`` (no code is unpickled), written atomically with a Markdown model card beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from breastseg.errors import ModelError
from breastseg.io.atomic import atomic_path


def write_model_file(path: str | Path, header: dict[str, Any], weights: Any, card_markdown: str) -> Path:
    """Write ``{"header": JSON, "weights": tensors}`` to ``path`` and the card to ``path.with_suffix(".card.md")``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"header": json.dumps(header), "weights": weights}, tmp)
    with atomic_path(path.with_suffix(".card.md")) as tmp:
        tmp.write_text(card_markdown, encoding="utf-8")
    return path


def card_bullets(card: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    """A model card's entries as Markdown bullets: ``* **Training cases**: …`` for ``training_cases``."""
    return [f"* **{key.replace('_', ' ').capitalize()}**: {value}" for key, value in card.items() if key not in skip]


def read_model_file(path: str | Path, kind: str, what: str) -> tuple[dict[str, Any], Any]:
    """``(header, weights)`` of a model file whose header says ``kind``; ``what`` names it in errors.

    Raises:
        ModelError: no such file, not a readable model file, or a model of another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such {what}")
    try:
        # memory-mapped: a bundle's tensors are read when used (a student's path never reads its 25 members)
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        header = json.loads(payload["header"])
    except Exception as exc:  # torch raises several types for foreign or corrupt files
        raise ModelError(f"{path}: not a breastseg {what} ({exc})") from exc
    if header.get("kind") != kind:
        raise ModelError(f"{path}: a {header.get('kind')!r} file, not a breastseg {what}")
    return header, payload["weights"]
