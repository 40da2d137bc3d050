"""Spark tuning (``kedro run --env spark --pipelines spark_tuning``): an Optuna search
of one Spark variant's hyperparameters on the val split, every trial fitted and scored
on Spark."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
