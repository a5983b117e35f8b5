"""Breast DCE-MRI workflow (Hirsch et al. 2022): exam reading, harmonisation, DCE features, the valid-padding 3D
U-Net, post-processing and read-outs; see ``docs/reference/mri.md``."""
