"""Where the PET says the tumour's edge lies at the latest: the contrast midpoint of the blurred uptake.

A Gaussian-blurred step between uptake ``T`` and background ``B`` crosses ``(T + B) / 2`` at the step, whatever
the blur. Taking the specimen's (gated) maximum for ``T`` puts that level at or inside the edge of any cooler part
of the tumour, so the contour drawn there lies at or inside the tumour's uptake boundary and its margin bounds the
true margin from above. Both methods use it as the upper end of their margin interval: the threshold method
beside its fold thresholds, the ResU-Net beside its own narrower contour. The feature is the relative (gated)
uptake of :func:`~breastseg.workflows.specimen.threshold.relative_uptake`: 1 at the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ContrastMidpoint:
    """The midpoint contour of a relative uptake map.

    Attributes:
        mask: voxels at or above ``level`` within the tissue.
        level: the contour's level, a fraction of the (gated) maximum.
        background: the median relative uptake of the tissue around the tumour (outside the wide mask; for a
            gated map the dense tissue the gate keeps, not the fat it zeroes).
        gated: whether the map is the CT-gated SUL (PET-CT) or the SUL alone (PET).
    """

    mask: np.ndarray
    level: float
    background: float
    gated: bool = True

    def describe(self) -> str:
        """The level in words, e.g. ``"0.55 of the gated SUL maximum (halfway from the median of the
        surrounding tissue, 0.10)"`` ("of the SUL maximum" for an ungated map)."""
        maximum = "gated SUL maximum" if self.gated else "SUL maximum"
        return (
            f"{self.level:g} of the {maximum} (halfway from the median of the surrounding tissue, "
            f"{self.background:.2f})"
        )


def contrast_midpoint(
    feature: np.ndarray, tissue: np.ndarray, wide: np.ndarray, gated: bool, floor: float = 0.0
) -> ContrastMidpoint:
    """The contour halfway between the maximum (1) of ``feature`` and the median of the tissue outside ``wide``
    (the tumour drawn generously), or at ``floor`` if that is higher. ``gated``: the feature zeroes the tissue
    below the CT gate (PET-CT), whose zeros are fat, not the tissue the tumour meets, and are left out of the
    median. Same grid for every array."""
    around = feature[tissue & ~wide]
    if gated:
        around = around[around > 0]
    background = float(np.median(around)) if around.size else 0.0
    level = round(max(floor, background + 0.5 * (1.0 - background)), 3)
    return ContrastMidpoint((feature >= level) & tissue, level, background, gated)
