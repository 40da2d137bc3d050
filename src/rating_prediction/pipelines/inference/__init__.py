"""``inference`` pipeline: the served model, pair predictions, recommendations, fold-in,
similar movies and top-K for every user."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
