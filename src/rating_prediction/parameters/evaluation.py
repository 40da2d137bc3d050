"""``evaluation``: batched prediction, the bias baseline and the ranking metrics."""

from __future__ import annotations

from pydantic import (
    Field,
    NonNegativeFloat,
)

from rating_prediction.data.schema import RATING_MAX, RATING_MIN
from rating_prediction.parameters.base import (
    NonNegativeInt,
    Parameters,
    PositiveInt,
    Weight,
)


class BiasBaselineParameters(Parameters):
    reg_user: NonNegativeFloat
    reg_movie: NonNegativeFloat
    n_epochs: PositiveInt


class RankingParameters(Parameters):
    """``evaluation.ranking``: top-K metrics of what a model would recommend.

    Relevant means a test rating of at least ``relevance_threshold``; candidates are the
    movies seen in training that the user has not rated in train. Users are scored in
    blocks of at most ``prediction_batch_size`` (user, movie) pairs. Above 0,
    ``popularity_weight`` also ranks each variant's scores blended with log popularity
    (entry ``<variant>_popularity_blend``). ``max_users`` ranks a seeded sample of at
    most that many of the users (``None``: every user).
    """

    k: PositiveInt = 10
    relevance_threshold: float = Field(default=4.0, gt=RATING_MIN, le=RATING_MAX)
    random_seed: NonNegativeInt = 42
    popularity_weight: Weight = 0.5
    max_users: PositiveInt | None = None


class EvaluationParameters(Parameters):
    """``evaluation``: batched prediction, the bias baseline and the ranking metrics."""

    prediction_batch_size: PositiveInt
    bias_baseline: BiasBaselineParameters
    ranking: RankingParameters = RankingParameters()
