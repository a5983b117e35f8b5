"""Evaluation: metrics (``metrics``) and statistics (``stats``), one implementation for the whole project."""
