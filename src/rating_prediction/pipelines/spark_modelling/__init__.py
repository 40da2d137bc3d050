"""Spark modelling (``kedro run --env spark``): the Spark variants fitted, evaluated
and exported on Spark, the served model, and every user's recommendations."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
