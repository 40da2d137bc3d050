"""``data_processing`` pipeline: top-N movie filter, id mapping and train/val/test split."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
