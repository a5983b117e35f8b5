"""Clinical integration: the DICOM listener, the job store, the workers that assess and send results."""
