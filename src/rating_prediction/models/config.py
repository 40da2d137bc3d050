"""A trained model's ``config.json`` (:class:`ModelConfig`) and the model it rebuilds."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.variants import variant


class ModelConfig(BaseModel):
    """``data/06_models/<variant>/config.json``: how to rebuild a trained model, and how
    its training went.

    Attributes:
        variant: The model variant (the training namespace it came from).
        n_users: Rows of the user tables (the size of ``user_mapping``).
        n_movies: Rows of the movie tables (the size of ``movie_mapping``).
        model_kwargs: The constructor's keyword arguments, the training mean included
            as ``global_mean``.
        best_epoch: The epoch whose weights were kept (chosen on val).
        best_val_loss: The held-out val MSE of that epoch, measured before any refit.
        best_val_ndcg: The held-out val NDCG@K of the fit on train, measured before
            any refit (for a ranker, the served ranker's choice).
        popularity_weight: The popularity blend's weight with the best held-out val
            NDCG@K (``evaluation.ranking.popularity_weight: val``).
        refit_on_train_val: Whether the saved weights were retrained on train + val.
        fit_seconds: Wall time of the whole fit, refit included.
        best_val_ndcg: A ranker's held-out val NDCG@K, measured on its fit on train before any refit (the served ranker's choice).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str
    n_users: int = Field(ge=0)
    n_movies: int = Field(ge=0)
    model_kwargs: dict[str, bool | int | float]
    best_epoch: int | None = None
    best_val_loss: float | None = None
    best_val_ndcg: float | None = None
    popularity_weight: float | None = None
    refit_on_train_val: bool = False
    fit_seconds: float | None = None
    best_val_ndcg: float | None = None

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, name: str) -> str:
        return variant(name).name


def build_model(config: ModelConfig | dict[str, Any]) -> RatingModel:
    """Instantiate a fresh model from its config (``config.json`` or a dict of it)."""
    config = ModelConfig.model_validate(config)
    return variant(config.variant).model_class(
        n_users=config.n_users, n_movies=config.n_movies, **config.model_kwargs
    )


def load_trained_model(
    config: ModelConfig | dict[str, Any], state_dict: dict[str, torch.Tensor]
) -> RatingModel:
    """A trained model in eval mode, from the training pipeline's config and weights."""
    model = build_model(config)
    model.load_state_dict(state_dict)
    return model.eval()
