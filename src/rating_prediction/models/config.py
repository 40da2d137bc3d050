"""A trained model's ``config.json`` (:class:`ModelConfig`) and the model it rebuilds."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.variants import variant


class ModelConfig(BaseModel):
    """``data/06_models/<variant>/config.json``: how to rebuild a trained model, and how
    its training went.

    Attributes:
        variant: The model variant (the training namespace it came from).
        n_users: Rows of the user tables (the size of ``user_mapping``).
        n_movies: Rows of the movie tables (the size of ``movie_mapping``).
        model_kwargs: The constructor's keyword arguments (numbers and booleans; a
            list of numbers or a table of numbers where the class takes one, e.g.
            ``SampledFactorization``'s ``levels`` and ``time``), the training mean
            included as ``global_mean`` where the class takes one.
        model_class: The ``RatingModel`` class the weights rebuild, by class name,
            when it is not the variant's own (``Variant.model_class``); ``None`` (the
            default, and every config written before the field) rebuilds the
            variant's own. Only the classes the variant registry lists for the
            variant (``Variant.other_model_classes``) are accepted: config.json is
            untrusted input, so it names a class of a closed table, never an import
            path. bayesian_fm with ordered probit or a time feature sets
            ``"SampledFactorization"``; its ``model_kwargs`` are then ``n_samples``,
            ``rank``, ``rating_min``, ``rating_max``, ``levels`` (the K rating
            values, ascending, for ordered probit; else null) and ``time`` (null, or
            ``{"origin", "width", "n_buckets", "default_bucket"}``): see
            :mod:`rating_prediction.models.sampled`.
        best_epoch: The epoch whose weights were kept (chosen on val).
        best_val_loss: The held-out val MSE of that epoch, measured before any refit.
        best_val_ndcg: The held-out val NDCG@K of the fit on train, measured before
            any refit (for a ranker, the served ranker's choice).
        popularity_weight: The popularity blend's weight with the best held-out val
            NDCG@K (``evaluation.ranking.popularity_weight: val``).
        refit_on_train_val: Whether the saved weights were retrained on train + val.
        fit_seconds: Wall time of the whole fit, refit included (not the ranking of
            val with the fit on train, which the training pipeline adds).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str
    n_users: int = Field(ge=0)
    n_movies: int = Field(ge=0)
    model_kwargs: dict[
        str, bool | int | float | list[float] | dict[str, int | float] | None
    ]
    model_class: str | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    best_val_ndcg: float | None = None
    popularity_weight: float | None = None
    refit_on_train_val: bool = False
    fit_seconds: float | None = None

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, name: str) -> str:
        return variant(name).name

    @model_validator(mode="after")
    def _a_class_of_the_variant(self) -> ModelConfig:
        self.rebuilt_class()
        return self

    def rebuilt_class(self) -> type[RatingModel]:
        """The class the weights rebuild (``model_class``, or the variant's own)."""
        return variant(self.variant).model_class_named(self.model_class)


def build_model(config: ModelConfig | dict[str, Any]) -> RatingModel:
    """Instantiate a fresh model from its config (``config.json`` or a dict of it)."""
    config = ModelConfig.model_validate(config)
    return config.rebuilt_class()(
        n_users=config.n_users, n_movies=config.n_movies, **config.model_kwargs
    )


def load_trained_model(
    config: ModelConfig | dict[str, Any], state_dict: dict[str, torch.Tensor]
) -> RatingModel:
    """A trained model in eval mode, from the training pipeline's config and weights."""
    model = build_model(config)
    model.load_state_dict(state_dict)
    return model.eval()
