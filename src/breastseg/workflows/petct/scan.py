"""One PET scan's biomarkers from files: the ``petct biomarkers`` command as a function.

The command, the batch runner (``batch petct``) and the Python API all call :func:`measure_scan`, so a scan gives
one answer whichever way it is run. :func:`load_scan` and :meth:`PetScan.measure` are its two halves, for callers
that measure several masks of one scan (a reader's manual mask beside the automatic one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from breastseg.errors import InputError
from breastseg.image import Image
from breastseg.io import read_image
from breastseg.workflows.petct.biomarkers import Biomarkers, PeakDefinition, compute_biomarkers
from breastseg.workflows.petct.readout import bone_from_ct, load_pet, read_mask_on, write_biomarkers


@dataclass(frozen=True)
class MeasuredScan:
    """What :func:`measure_scan` computed and wrote (``written``: ``json``, ``csv``, ``mip`` and, with DICOM
    output, ``seg`` and ``sr``)."""

    biomarkers: Biomarkers
    lesions: np.ndarray
    written: Mapping[str, Path]


@dataclass(eq=False)
class PetScan:
    """A PET in SUVbw and SUL, with its bone and liver masks on the PET grid (``None`` when not given).

    Attributes:
        provenance: where each input came from (``pet``, ``bone_mask`` — a file, or the CT threshold — and
            ``liver_mask``), written into ``biomarkers.json``.
    """

    pet: Path
    suv: Image
    sul: Image | None
    bone: np.ndarray | None = None
    liver: np.ndarray | None = None
    provenance: dict[str, str | None] = field(default_factory=dict)
    sul_missing: str | None = None

    def measure(
        self, mask: str | Path, peak_definition: PeakDefinition | str = PeakDefinition.STUDY, name: str = "lesion mask"
    ) -> tuple[Biomarkers, np.ndarray]:
        """The biomarkers of the lesion mask file ``mask`` (any grid covering it: moved onto the PET's by nearest
        neighbour; one reaching beyond the PET is refused) and the lesions on the PET grid."""
        lesions = read_mask_on(mask, self.suv, name)
        sul = self.sul.array if self.sul is not None else None
        result = compute_biomarkers(
            self.suv.array, sul, lesions, self.suv.spacing, self.bone, self.liver, peak_definition, self.sul_missing
        )
        return result, lesions

    def measure_to(
        self,
        mask: str | Path,
        out_dir: str | Path,
        peak_definition: PeakDefinition | str = PeakDefinition.STUDY,
        dicom_out: str | Path | None = None,
        provenance: Mapping[str, str | None] | None = None,
    ) -> MeasuredScan:
        """:meth:`measure`, then write ``biomarkers.json``, ``lesions.csv`` and ``mip.png`` into ``out_dir`` and,
        with ``dicom_out`` (the PET must be a DICOM series), ``seg.dcm`` and ``sr.dcm`` there. ``provenance`` adds
        to or replaces the recorded input paths."""
        result, lesions = self.measure(mask, peak_definition)
        recorded = {**self.provenance, "mask": str(mask), **(provenance or {})}
        written = dict(write_biomarkers(result, self.suv, out_dir, recorded, lesions))
        if dicom_out is not None:
            from breastseg.io.dicom import read_dicom_series
            from breastseg.workflows.petct.dicom_export import write_petct_dicom_outputs

            series = read_dicom_series(self.pet, modality="PT")
            written.update(write_petct_dicom_outputs(result, lesions, series, dicom_out))
        return MeasuredScan(result, lesions, written)


def load_scan(
    pet: str | Path,
    pet_info: str | Path | None = None,
    *,
    bone_mask: str | Path | None = None,
    liver_mask: str | Path | None = None,
    ct: str | Path | None = None,
    bone_from_ct_threshold: bool = False,
    pet_units: str | None = None,
) -> PetScan:
    """Read the PET (DICOM, or an image with a ``pet_info`` JSON or ``pet_units``) as SUVbw and SUL, and its organ
    masks (see :func:`~breastseg.workflows.petct.readout.load_pet`).

    A bone mask comes from ``bone_mask``, or with ``bone_from_ct_threshold`` from ``ct`` (≥ 200 HU, marrow filled:
    the documented coarse fallback); giving both, or the flag without a CT, is an :class:`InputError`.
    """
    if bone_mask is not None and bone_from_ct_threshold:
        raise InputError("give a bone mask or the CT-threshold bone, not both")
    if bone_from_ct_threshold and ct is None:
        raise InputError("the CT-threshold bone needs a CT")
    loaded = load_pet(pet, pet_info, pet_units)
    suv, sul = loaded.suv, loaded.sul
    bone, bone_source = None, None
    if bone_mask is not None:
        bone, bone_source = read_mask_on(bone_mask, suv, "bone mask", whole=False), str(bone_mask)
    elif bone_from_ct_threshold and ct is not None:
        bone, bone_source = bone_from_ct(read_image(ct, modality="CT"), suv), f"CT threshold ({ct})"
    liver = read_mask_on(liver_mask, suv, "liver mask", whole=False) if liver_mask is not None else None
    provenance = {"pet": str(pet), "bone_mask": bone_source, "liver_mask": str(liver_mask) if liver_mask else None}
    return PetScan(Path(pet), suv, sul, bone, liver, provenance, loaded.sul_missing)


def measure_scan(
    pet: str | Path,
    mask: str | Path,
    out_dir: str | Path,
    *,
    pet_info: str | Path | None = None,
    bone_mask: str | Path | None = None,
    liver_mask: str | Path | None = None,
    ct: str | Path | None = None,
    bone_from_ct_threshold: bool = False,
    peak_definition: PeakDefinition | str = PeakDefinition.STUDY,
    dicom_out: str | Path | None = None,
    provenance: Mapping[str, str | None] | None = None,
    pet_units: str | None = None,
) -> MeasuredScan:
    """``petct biomarkers``: SULpeak (and the same peak on SUVbw), SUVmax, SUVmean, MTV (ml), TLG, lesion count
    and, with bone / liver masks, the PET Bone and Liver Indices of the lesion ``mask`` (a PET in SUVbw without the
    patient's height and sex: every SUL value ``None``, the reason in ``sul_missing``); writes
    ``biomarkers.json``, ``lesions.csv`` and ``mip.png`` into ``out_dir`` and, with ``dicom_out`` (the PET must be a
    DICOM series), ``seg.dcm`` and ``sr.dcm`` there. ``provenance`` adds to or replaces the recorded input paths;
    ``pet_units`` as in :func:`~breastseg.workflows.petct.readout.load_pet`."""
    scan = load_scan(
        pet,
        pet_info,
        bone_mask=bone_mask,
        liver_mask=liver_mask,
        ct=ct,
        bone_from_ct_threshold=bone_from_ct_threshold,
        pet_units=pet_units,
    )
    return scan.measure_to(mask, out_dir, peak_definition, dicom_out, provenance)
