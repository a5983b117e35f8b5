"""Whole-body FDG PET/CT: metastatic lesions, SUV biomarkers and treatment response."""
