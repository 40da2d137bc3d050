"""Tuning: an Optuna search of one variant's hyperparameters on the val split."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
