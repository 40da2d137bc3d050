"""``inference`` pipeline: pair predictions and top-K recommendations from the served model."""

from .pipeline import create_pipeline, create_serving_pipeline

__all__ = ["create_pipeline", "create_serving_pipeline"]
