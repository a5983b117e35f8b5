"""The file names of the DICOM objects every workflow writes into its DICOM output folder, spelt once."""

from __future__ import annotations

#: the segmentation (DICOM SEG), the measurement report (TID 1500 SR) and the report figure (secondary capture)
SEG_NAME, SR_NAME, SC_NAME = "seg.dcm", "sr.dcm", "report.dcm"
