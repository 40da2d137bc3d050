"""Ingestion: a MovieLens release (or a synthetic sample) into ``ratings``, ``movies``
and ``users``."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
