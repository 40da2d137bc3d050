"""``cross_validation`` pipeline: every variant and baseline over K folds, with intervals."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
