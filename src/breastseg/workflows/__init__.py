"""Workflows: each reads like its study's Methods section, as calls into the shared building blocks."""
