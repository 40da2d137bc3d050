"""``inference`` pipeline: pair predictions and top-K recommendations from the served model."""

from .pipeline import INFERENCE_REQUEST, create_pipeline, create_serving_pipeline

__all__ = ["INFERENCE_REQUEST", "create_pipeline", "create_serving_pipeline"]
