"""Figures (matplotlib) and HTML reports shared by the workflows."""
