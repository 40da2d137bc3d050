"""``inference``: the served variant and the requests the pipeline answers from the
parameters."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PlainValidator,
    StrictFloat,
    field_validator,
    model_validator,
)

from rating_prediction.data.schema import MAX_ID
from rating_prediction.parameters.base import (
    Parameters,
    PositiveInt,
    Weight,
)
from rating_prediction.parameters.bounds import (
    BatchSize,
    BlockUsers,
    TopK,
)
from rating_prediction.parameters.training import TrainingParameters

# Parameters hold a handful of example requests: MLflow logs the `inference` block as one
# run parameter (at most 6,000 characters). More belong in a request file.
MAX_PARAMETER_REQUESTS = 100

# The bounds the pipeline's blocks and the served model's request `params` share (one
# definition, so a value the pipeline refuses is refused over REST too): MAX_TOP_K and
# TopK live with every other size bound in parameters/bounds.py.

# The fold-in's ridge weight: 0 leaves a user with fewer ratings than factors a singular
# system, NaN or infinity a NaN answer. Booleans and strings are no numbers (strict).
Regularization = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
DEFAULT_TOP_K = 10
DEFAULT_REGULARIZATION = 5.0


def _request_id(value: Any) -> int | str:
    """An original id: an integer in 0..MAX_ID (as `Id`, with a message saying what to
    do with a bad one) or a non-empty string (a data set whose ids are strings). Whether
    it is the served model's type is checked when the model is known (the nodes)."""
    if isinstance(value, str):
        if not value:
            raise ValueError("must be a non-empty id, got ''")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            "must be an integer id (original MovieLens id) or a string id (a data "
            f"set whose ids are strings), got {value!r}"
        )
    if not 0 <= value <= MAX_ID:
        raise ValueError(
            f"must be an original MovieLens id, an integer in 0..{MAX_ID} "
            f"(ids are Int32 from ingestion on), got {value}: fix or remove it (an id "
            "unseen in training is fine: it gets the model's fallback)"
        )
    return value


RequestId = Annotated[int | str, PlainValidator(_request_id)]


def _a_few_requests(
    requests: Any, what: str, example: str, many: str, dataset: str
) -> Any:
    """``requests`` unchanged when it is a short list; else what to write instead."""
    if not isinstance(requests, list):
        raise ValueError(
            f"must be a list of {what} (original MovieLens ids), e.g. {example}, or [] "
            f"for none; got {requests!r}"
        )
    if len(requests) > MAX_PARAMETER_REQUESTS:
        raise ValueError(
            f"holds {len(requests)} {many}; parameters hold at most "
            f"{MAX_PARAMETER_REQUESTS} examples (MLflow logs them as a run parameter). "
            f"Put them in a request file instead: the catalog entry {dataset} "
            "(conf/base/catalog_inference.yml)"
        )
    return requests


class RecommendParameters(Parameters):
    """``inference.recommend``: top-K for a few users (and ``popularity_weight`` for
    every recommendation of the served model, ``batch_recommend``'s included).

    Above 0, ``popularity_weight`` ranks by the evaluation's popularity blend
    (``evaluation.ranking.popularity_weight``'s formula) instead of the predicted
    rating; 0 is the model's own ranking.
    """

    user_ids: list[RequestId]
    top_k: TopK
    popularity_weight: Weight = 0.0

    @field_validator("user_ids", mode="before")
    @classmethod
    def _a_few_user_ids(cls, user_ids: Any) -> Any:
        return _a_few_requests(user_ids, "userIds", "[1, 2]", "users", "user_requests")


class FoldInParameters(Parameters):
    """``inference.fold_in``: a new user's own (movieId, rating) pairs, folded in
    without retraining (biased MF variants), and the ridge regularisation. The ratings
    are checked against the served model's rating scale (the data set's) when it is
    known, by the node."""

    ratings: list[tuple[RequestId, Annotated[float, Field(allow_inf_nan=False)]]] = []
    regularization: Regularization = DEFAULT_REGULARIZATION
    top_k: TopK = DEFAULT_TOP_K


class SimilarParameters(Parameters):
    """``inference.similar``: movies to find look-alikes of, by their factors."""

    movie_ids: list[RequestId] = []
    top_k: TopK = DEFAULT_TOP_K


class BatchRecommendParameters(Parameters):
    """``inference.batch_recommend``: top-K for every user seen in training, or for the
    users of the ``user_requests`` file, in blocks of users."""

    top_k: TopK = DEFAULT_TOP_K
    block_size: BlockUsers = 128

    @model_validator(mode="before")
    @classmethod
    def _users_file_moved(cls, values: Any) -> Any:
        if isinstance(values, dict) and "users_file" in values:
            raise ValueError(
                "'users_file' is no longer a parameter: the users to recommend for "
                "come from the catalog entry user_requests; put them in "
                "data/01_raw/requests/users.parquet (or point that entry at your "
                "file, see conf/base/catalog_inference.yml) and remove users_file"
            )
        return values


class RequestFileParameters(Parameters):
    """``inference.request_files``: how request files (``pair_requests``,
    ``user_requests``) are read, answered and written: ``batch_size`` rows at a time."""

    batch_size: BatchSize = 100_000


class InferenceParameters(Parameters):
    """``inference``: which rating variant and which ranker are served, example pairs
    and recommendations."""

    served_variant: str
    served_ranker: str = "best"
    pairs: list[tuple[RequestId, RequestId]]
    recommend: RecommendParameters
    fold_in: FoldInParameters = FoldInParameters()
    similar: SimilarParameters = SimilarParameters()
    batch_recommend: BatchRecommendParameters = BatchRecommendParameters()
    request_files: RequestFileParameters = RequestFileParameters()

    @field_validator("pairs", mode="before")
    @classmethod
    def _a_few_pairs(cls, pairs: Any) -> Any:
        return _a_few_requests(
            pairs, "[userId, movieId] pairs", "[[1, 31]]", "pairs", "pair_requests"
        )

    @field_validator("served_variant")
    @classmethod
    def _known_variant(cls, served_variant: str) -> str:
        valid = ["best", *TrainingParameters.model_fields]
        if served_variant not in valid:
            raise ValueError(f"must be one of {valid}, got {served_variant!r}")
        return served_variant

    @field_validator("served_ranker")
    @classmethod
    def _known_ranker(cls, served_ranker: str) -> str:
        # Which variants rank, the hooks check against the variant registry (this
        # layer does not know it): here only that it names a variant at all.
        if served_ranker not in ["best", "none", *TrainingParameters.model_fields]:
            raise ValueError(
                "must be 'best', 'none' or the name of a ranker (a variant that "
                f"ranks movies and predicts no ratings), got {served_ranker!r}"
            )
        return served_ranker


class RequestParameters(Parameters):
    """The ``params`` of one request to the served model (the MLflow model's), checked
    at the serving edge with the bounds of the pipeline's own blocks: ``k`` as every
    ``top_k``, ``regularization`` as ``fold_in.regularization``, ``popularity_weight``
    as ``recommend.popularity_weight`` (its default there is the served model's)."""

    task: Literal["predict", "recommend", "similar"] = "predict"
    k: TopK = DEFAULT_TOP_K
    regularization: Regularization = DEFAULT_REGULARIZATION
    popularity_weight: Weight = 0.0


class ServingLimits(Parameters):
    """How much work one request to the served model may ask for, checked before any
    work starts, so that no request can hold the server's memory or time. Set where
    the model is served, each by ``RATING_PREDICTION_<NAME>`` (read at load, see
    :func:`rating_prediction.serving.requests.serving_limits`).

    Attributes:
        max_request_rows: Rows of a request, any task (for ``predict``, its pairs): 1M
            pairs take 0.1 s and 25 MB in process (docs/serving.md).
        max_answer_rows: Rows a ``recommend`` (distinct userIds x ``k``) or ``similar``
            (distinct movieIds x ``k``) answer may have: each row is a scored, titled
            movie, and over REST a JSON object.
        max_fold_in_users: Distinct users a request folds in from ratings of their own
            (each one a solve, or a ranker's scores of every movie).
    """

    max_request_rows: PositiveInt = 1_000_000
    max_answer_rows: PositiveInt = 100_000
    max_fold_in_users: PositiveInt = 1_000
