"""``evaluation`` pipeline: test predictions and MSE/RMSE/MAE of every model and baseline."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
