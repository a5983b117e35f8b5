"""DICOM Secondary Capture (highdicom) of a report figure, in the study of the images it shows.

PACS viewers that know nothing of SEG or SR still show a secondary capture, so the report's figure travels with
the results. The PNG is stored as 8-bit RGB, uncompressed.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
from PIL import Image as PILImage
from pydicom.dataset import Dataset

from breastseg.errors import InputError
from breastseg.io.atomic import atomic_path


def write_secondary_capture(
    figure: str | Path,
    reference: Dataset,
    path: str | Path,
    series_number: int = 302,
    series_description: str = "breastseg report",
    patient_orientation: tuple[str, str] | None = ("L", "P"),
) -> Path:
    """Write the PNG ``figure`` as an RGB secondary capture in the patient and study of ``reference``.

    ``patient_orientation``: the directions of the figure's rows and columns (PatientOrientation); the default is
    that of the report figure's first panel, an axial slice of an LPS-aligned volume; ``None`` where the directions
    are unknown (an ultrasound image).
    """
    figure = Path(figure)
    try:
        with PILImage.open(figure) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{figure}: cannot read the report figure ({exc})") from exc
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=reference,
        pixel_array=rgb,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        patient_orientation=patient_orientation or ("L", "P"),  # highdicom asks for one; unknown is emptied below
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="breastseg",
        series_description=series_description,
    )
    if patient_orientation is None:  # type 2C without a frame of reference: present, empty when unknown
        sc.PatientOrientation = []  # an empty value
    if "Laterality" not in sc:  # type 2C: present (empty when unknown) as in the source series
        sc.Laterality = reference.get("Laterality", "")
    path = Path(path)
    with atomic_path(path) as tmp:
        sc.save_as(tmp)
    return path
