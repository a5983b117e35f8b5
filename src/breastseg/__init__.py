"""breastseg: breast tumour segmentation and the clinical read-outs built on it.

Conventions used everywhere in the package:

* Arrays are NumPy in ``(z, y, x)`` order for 3D and ``(y, x)`` for 2D; ``spacing`` follows the array order,
  in millimetres.
* ``origin`` (the centre of voxel 0) and ``direction`` are physical and follow DICOM / ITK: patient LPS
  coordinates ``(x, y, z)`` in mm, and a direction matrix whose column ``i`` is the unit vector of ITK index
  axis ``i`` (``i = 0`` is the array's last axis, x).
"""

from __future__ import annotations

from breastseg._version import __version__
from breastseg.errors import BreastsegError, InputError, ModelError
from breastseg.image import Grid, Image
from breastseg.io import read_image, write_image

__all__ = [
    "BreastsegError",
    "Grid",
    "Image",
    "InputError",
    "ModelError",
    "__version__",
    "read_image",
    "write_image",
]
