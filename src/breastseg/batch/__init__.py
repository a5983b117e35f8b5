"""Cohorts: a manifest of cases run through a workflow on a local process pool or a Dask cluster."""
