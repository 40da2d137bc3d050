"""``cross_validation``: repeated evaluation over folds, with intervals."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StrictInt,
    field_validator,
)

from rating_prediction.parameters.base import (
    Parameters,
)
from rating_prediction.parameters.bounds import MAX_FOLDS, Epochs, Seed
from rating_prediction.parameters.training import TrainingParameters


class CrossValidationParameters(Parameters):
    """``cross_validation``: repeated evaluation over ``k`` folds, with intervals.

    ``scheme``: ``predefined`` (the release's own folds, ``folds``; ml-100k: u1..u5),
    ``random`` (``k`` random splits with seeds ``seed``, ``seed + 1``, ...,
    cut at ``processing.split.fractions``) or ``kfold`` (``k``-fold cross validation of
    a seeded permutation; val is ``val_fraction`` of each fold's training part).
    ``max_epochs`` (null: as trained) caps the epochs of every epoch-trained variant and
    ``training_overrides`` (``{variant: {key: value}}``) is merged into ``training`` on
    every fold, to keep the run short; every variant in ``VARIANTS`` and every
    baseline is evaluated on each fold, each override checked as ``training`` is.
    """

    scheme: Literal["predefined", "random", "kfold"] = "kfold"
    k: Annotated[StrictInt, Field(ge=2, le=MAX_FOLDS)] = 5
    seed: Seed = 42
    folds: list[str] | None = Field(default=None, min_length=2, max_length=MAX_FOLDS)
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    max_epochs: Epochs | None = None
    training_overrides: dict[str, dict[str, Any]] = {}
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95

    @field_validator("training_overrides")
    @classmethod
    def _known_variants(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = [
            name for name in overrides if name not in TrainingParameters.model_fields
        ]
        if unknown:
            raise ValueError(
                f"unknown variant(s) {unknown}; valid: "
                f"{', '.join(TrainingParameters.model_fields)}"
            )
        return overrides
