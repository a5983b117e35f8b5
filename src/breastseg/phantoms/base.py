"""The phantom framework: a generated case is a set of images with true geometry plus a truth file.

Every generator returns a :class:`Phantom`, deterministic for a given configuration (seed included);
:func:`write_phantom` writes each image as ``<name>.nii.gz`` and ``truth.json`` last, so a folder with a
``truth.json`` is complete. The truth records the configuration and the package version, so any phantom can
be regenerated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breastseg._version import __version__
from breastseg.image import Image
from breastseg.io import write_image
from breastseg.io.atomic import write_json

TRUTH_SCHEMA_VERSION = 1


@dataclass(eq=False)
class Phantom:
    """A generated case.

    Attributes:
        kind: generator name (``"specimen"`` …).
        images: file stem → image (e.g. ``"ct"``, ``"pet"``, ``"tumour"``).
        truth: JSON-serialisable ground truth; numbers carry their unit in the key (``margin_mm``).
        config: the generator configuration (a dataclass), recorded in the truth file.
    """

    kind: str
    images: dict[str, Image]
    truth: dict[str, Any]
    config: Any = field(default=None)

    def truth_document(self) -> dict[str, Any]:
        is_instance = dataclasses.is_dataclass(self.config) and not isinstance(self.config, type)
        cfg = dataclasses.asdict(self.config) if is_instance else self.config
        return {
            "schema_version": TRUTH_SCHEMA_VERSION,
            "phantom": self.kind,
            "breastseg_version": __version__,
            "config": cfg,
            **self.truth,
        }


def write_phantom(phantom: Phantom, out_dir: str | Path) -> dict[str, Path]:
    """Write every image as NIfTI and then ``truth.json``; returns name → path (``"truth"`` included)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {name: write_image(img, out / f"{name}.nii.gz") for name, img in phantom.images.items()}
    doc = phantom.truth_document()
    doc["files"] = {name: path.name for name, path in written.items()}
    written["truth"] = write_json(doc, out / "truth.json")
    return written
