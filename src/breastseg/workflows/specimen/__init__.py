"""Specimen workflow: intraoperative margin assessment on lumpectomy micro-PET-CT (Maris et al. 2025)."""

from __future__ import annotations

from breastseg.workflows.specimen.pipeline import AssessConfig, assess_specimen, run_assessment

__all__ = ["AssessConfig", "assess_specimen", "run_assessment"]
