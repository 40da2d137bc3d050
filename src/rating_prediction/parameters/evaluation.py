"""``evaluation``: batched prediction, the bias baseline and the ranking metrics."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
)

from rating_prediction.data.schema import RatingScale
from rating_prediction.parameters.base import (
    ParameterError,
    Parameters,
    Weight,
)
from rating_prediction.parameters.bounds import BatchSize, EntityCap, Epochs, Seed, TopK


class BiasBaselineParameters(Parameters):
    reg_user: NonNegativeFloat
    reg_movie: NonNegativeFloat
    n_epochs: Epochs


class RankingParameters(Parameters):
    """``evaluation.ranking``: top-K metrics of what a model would recommend.

    Relevant means a test rating of at least the relevance threshold: the stated
    ``relevance_threshold`` (on the data set's rating scale), or when it is ``None``
    ``relevance_fraction`` of the way up the scale (:meth:`threshold`: 0.75 of
    MovieLens's 0.5..5 is 3.875, the 4 stars and up). Candidates are the movies seen in
    train that the user has not rated in train or val (the history: everything known
    before test). Users are scored in blocks of at most ``prediction_batch_size``
    (user, movie) pairs. ``popularity_weight`` also ranks each variant's scores blended
    with log popularity (entry ``<variant>_popularity_blend``): at the weight chosen on
    val for each variant (``val``: the best val NDCG@K of its fit on train, recorded
    as ``popularity_weight`` in its config), or at a stated weight; 0 switches the
    blend entries off. ``max_users`` ranks a seeded sample of at most that many of the
    users (``None``: every user).
    """

    k: TopK = 10
    relevance_threshold: float | None = None
    relevance_fraction: float = Field(default=0.75, gt=0, le=1)
    random_seed: Seed = 42
    popularity_weight: Weight | Literal["val"] = "val"
    max_users: EntityCap | None = None

    def threshold(self, scale: RatingScale) -> float:
        """The relevance threshold on ``scale``: ``relevance_threshold`` when stated,
        else ``scale.fraction(relevance_fraction)``.

        Raises:
            ParameterError: If the stated threshold is not inside ``(min, max]`` of
                ``scale`` (at or below the minimum every rating would be relevant,
                above the maximum none).
        """
        if self.relevance_threshold is None:
            return scale.fraction(self.relevance_fraction)
        if not scale.min < self.relevance_threshold <= scale.max:
            raise ParameterError(
                "Invalid parameters (conf/base/parameters_*.yml, conf/<env>/ or "
                f"--params):\n- 'evaluation.ranking.relevance_threshold': "
                f"{self.relevance_threshold} is not on the data set's rating scale "
                f"{scale.min}..{scale.max}: it must lie in ({scale.min}, {scale.max}]. "
                "Set it on that scale, or set it to null to take "
                "evaluation.ranking.relevance_fraction of the scale"
            )
        return self.relevance_threshold


class EvaluationParameters(Parameters):
    """``evaluation``: batched prediction, the bias baseline and the ranking metrics."""

    prediction_batch_size: BatchSize
    bias_baseline: BiasBaselineParameters
    ranking: RankingParameters = RankingParameters()
