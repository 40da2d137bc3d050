"""``reporting`` pipeline: figures and a one-page summary of the evaluation."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
