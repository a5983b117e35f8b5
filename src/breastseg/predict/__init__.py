"""Prediction: run trained networks on slices, volumes (tri-planar) and ensembles."""
