"""The served model: the bundle, id validation and lookup, pair predictions, top-K.

Requests speak ORIGINAL MovieLens ids; the model speaks 0-based mapped ids. A user or
movie is *known* when it has a mapped id AND appears in the training split (an
:class:`~rating_prediction.data.ids.IdIndex` decides); anything else gets index ``-1``, which
:meth:`RatingModel.predict` answers with the model's natural fallback (zero factors and
biases: the global mean plus whatever is known).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction.data.ids import UNKNOWN_INDEX, IdIndex
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.scoring import SCORE_BATCH_ROWS, DenseLookup, PairScorer
from rating_prediction.models.variants import VARIANTS

from .rated import RatedIndex

logger = logging.getLogger(__name__)

BEST_VARIANT = "best"
PAIR_COLUMNS = ("userId", "movieId")

# Int64 ids: a request may carry any integer, even one beyond the Int32 mapping range.
PAIRS_SCHEMA = pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})
PAIR_PREDICTIONS_SCHEMA = pl.Schema(
    {
        **PAIRS_SCHEMA,
        "prediction": pl.Float64,
        "known_user": pl.Boolean,
        "known_movie": pl.Boolean,
    }
)
RECOMMENDATIONS_SCHEMA = pl.Schema(
    {
        "userId": pl.Int64,
        "rank": pl.Int32,
        "movieId": pl.Int64,
        "title": pl.String,
        "prediction": pl.Float64,
        "known_user": pl.Boolean,
    }
)

# Bounds the (user, candidate movie) pairs scored at once when recommending.
MAX_SCORED_PAIRS = 2_000_000
# Ids are held as Int32 from ingestion on: anything outside 0..MAX_ID names no user or
# movie of any release, so it is refused rather than answered with the fallback.
MAX_ID = 2**31 - 1


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One trained variant plus the id lookups it needs to answer in original ids.

    An immutable value: it is built once per run and then only read, so the model it
    builds from ``state_dict`` on first use is kept for every later request.

    Attributes:
        config: How to rebuild the variant's model (its ``config.json``).
        state_dict: The trained weights.
        users: Original userId to index; only users seen in training are known.
        movies: Original movieId to index; only movies seen in training are known.
        movie_titles: The title of each known movie, in the order of
            ``movies.known_ids`` (null where ``movies`` has none).
        rated: The movies each user rated in training (never recommended to them).
        split_fingerprint: :func:`~rating_prediction.serving.registry.split_fingerprint`
            of the splits it was trained and evaluated on.
        movie_rating_counts: The number of training ratings of each movie index (the
            popularity a recommendation's popularity blend uses).
        popularity_weight: The popularity blend's weight it was built with
            (``inference.recommend.popularity_weight``): the default of the MLflow
            model's ``recommend`` task.
    """

    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    users: IdIndex
    movies: IdIndex
    movie_titles: pl.Series
    rated: RatedIndex | None = None
    split_fingerprint: str = ""
    movie_rating_counts: np.ndarray | None = None
    popularity_weight: float = 0.0

    @property
    def variant(self) -> str:
        return self.config.variant

    @cached_property
    def model(self) -> RatingModel:
        """The trained model in eval mode, built from the weights on first use only."""
        return load_trained_model(self.config, self.state_dict)

    @cached_property
    def scorer(self) -> PairScorer:
        """Scores mapped pairs (``-1`` unknown); built once, with the model."""
        return PairScorer(self.model)

    @cached_property
    def user_lookup(self) -> Callable[[np.ndarray], np.ndarray]:
        """Validated original userIds to indices (``-1`` unknown), built once."""
        return _fast_lookup(self.users)

    @cached_property
    def movie_lookup(self) -> Callable[[np.ndarray], np.ndarray]:
        """Validated original movieIds to indices (``-1`` unknown), built once."""
        return _fast_lookup(self.movies)

    def __deepcopy__(self, memo: dict[int, Any]) -> ServedModel:
        # Kedro's MemoryDataset deep-copies what it holds on every load. Nothing ever
        # changes a ServedModel, so the copy can be the object itself, which keeps the
        # model it built.
        return self

    @property
    def candidate_movies(self) -> pl.DataFrame:
        """movieId, movieIdMapped and title of every known movie, ascending."""
        return pl.DataFrame(
            {
                "movieId": self.movies.known_ids,
                "movieIdMapped": np.flatnonzero(self.movies.seen),
                "title": self.movie_titles,
            },
            schema={"movieId": pl.Int64, "movieIdMapped": pl.Int64, "title": pl.String},
        )


def _fast_lookup(index: IdIndex) -> Callable[[np.ndarray], np.ndarray]:
    if DenseLookup.fits(index.ids):
        return DenseLookup(index.ids, index.seen)
    return index.lookup


def select_served_variant(
    held_out_val_mse: dict[str, float], served_variant: str
) -> str:
    """``served_variant`` itself, or for ``best`` the variant with the lowest val error.

    ``held_out_val_mse`` maps each trained variant to its ``best_val_loss``: the val MSE of
    its best epoch, measured before any refit on train + val, so a refit variant's
    in-sample val metrics in metrics.json do not decide.
    """
    if served_variant == BEST_VARIANT:
        if not held_out_val_mse:
            raise ValueError("Cannot pick the best variant: no trained model variant.")
        return min(held_out_val_mse, key=held_out_val_mse.get)
    if served_variant not in VARIANTS:
        raise ValueError(
            f"Unknown served variant {served_variant!r}; valid values: "
            f"{', '.join([BEST_VARIANT, *VARIANTS])}."
        )
    return served_variant


def _check_sizes(config: ModelConfig, users: IdIndex, movies: IdIndex) -> None:
    for mapping, index, size in (
        ("user_mapping", users, config.n_users),
        ("movie_mapping", movies, config.n_movies),
    ):
        if len(index) > size:
            raise ValueError(
                f"{mapping} has {len(index)} ids but the {config.variant} model has "
                f"only {size} rows: the id mappings and the trained model come from "
                "different runs; rerun training."
            )


def _known_titles(movie_index: IdIndex, movies: pl.DataFrame) -> pl.Series:
    """The title of each known movie, in index order (null where ``movies`` has none)."""
    return pl.DataFrame({"movieId": movie_index.known_ids}).join(
        movies.select(pl.col("movieId").cast(pl.Int64), "title"),
        on="movieId",
        how="left",
        validate="m:1",
        maintain_order="left",
    )["title"]


def assemble_served_model(
    config: ModelConfig | dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    *,
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    train_ratings: pl.DataFrame,
    movies: pl.DataFrame,
    split_fingerprint: str = "",
    popularity_weight: float = 0.0,
) -> ServedModel:
    """Bundles a trained variant with the ids seen in training, the movie titles and
    each movie's number of training ratings; ``popularity_weight`` is the popularity
    blend's weight its MLflow model defaults to.

    Raises:
        ValueError: If a mapping has more ids than the model has rows: the mapping was
            rebuilt without retraining, and its ids would index past the embeddings.
    """
    config = ModelConfig.model_validate(config)
    users = IdIndex.from_training(user_mapping, train_ratings, "userId")
    movie_index = IdIndex.from_training(movie_mapping, train_ratings, "movieId")
    _check_sizes(config, users, movie_index)
    rated = RatedIndex.from_indices(
        train_ratings["userIdMapped"].to_numpy(),
        train_ratings["movieIdMapped"].to_numpy(),
        len(users),
    )
    counts = np.bincount(
        train_ratings["movieIdMapped"].to_numpy(), minlength=len(movie_index)
    )
    served = ServedModel(
        config,
        state_dict,
        users,
        movie_index,
        _known_titles(movie_index, movies),
        rated,
        split_fingerprint,
        counts.astype(np.int64),
        popularity_weight,
    )
    logger.info(
        "Served model: %s, %d known users, %d known movies.",
        served.variant,
        users.seen.sum(),
        movie_index.seen.sum(),
    )
    return served


def validate_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """The ``userId`` and ``movieId`` columns as Int64; a clear error for bad input.

    Whole-number floats are accepted (JSON and pandas turn ints into floats easily);
    fractions, infinities, strings and missing values are not.
    """
    missing = [column for column in PAIR_COLUMNS if column not in pairs.columns]
    if missing:
        raise ValueError(
            f"The request lacks the column(s) {missing}: expected {list(PAIR_COLUMNS)} "
            f"holding original MovieLens ids, got {pairs.columns}."
        )
    if pairs.is_empty():
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    return pl.DataFrame([_integer_ids(pairs[column]) for column in PAIR_COLUMNS])


def _integer_ids(ids: pl.Series) -> pl.Series:
    if ids.null_count():
        raise ValueError(
            f"Column {ids.name!r} has {ids.null_count()} missing value(s); "
            "every pair needs both ids."
        )
    if ids.dtype.is_float():
        not_whole = ids.filter(~ids.is_finite() | (ids != ids.floor()))
        if not not_whole.is_empty():
            raise ValueError(
                f"Column {ids.name!r} must hold integer ids; got "
                f"{not_whole.head(3).to_list()}."
            )
    elif not ids.dtype.is_integer():
        raise ValueError(
            f"Column {ids.name!r} must hold integer ids, not {ids.dtype} "
            f"(e.g. {ids.head(3).to_list()})."
        )
    return pl.Series(ids.name, check_id_range(ids.name, ids.cast(pl.Int64).to_numpy()))


def check_id_range(name: str, ids: np.ndarray) -> np.ndarray:
    """``ids`` (int64); a clear error for a negative id or one above ``MAX_ID``."""
    if ids.size and (ids.min() < 0 or ids.max() > MAX_ID):
        bad = ids[(ids < 0) | (ids > MAX_ID)]
        raise ValueError(
            f"Column {name!r} must hold ids in 0..{MAX_ID}; got {bad[:3].tolist()}."
        )
    return ids


def check_ids(name: str, values: np.ndarray) -> np.ndarray:
    """``values`` (any numpy array a request column became) as int64 ids.

    Refuses booleans, fractions, infinities, NaN (a missing value), strings and ids
    outside 0..``MAX_ID``, each with a message naming the column.
    """
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    if values.dtype.kind == "O":
        values = _object_ids(name, values)
    if values.dtype.kind == "b":
        raise ValueError(f"Column {name!r} must hold integer ids, not booleans.")
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            raise ValueError(f"Column {name!r} has missing value(s).")
        bad = values[~np.isfinite(values) | (values != np.floor(values))]
        if bad.size:
            raise ValueError(
                f"Column {name!r} must hold integer ids; got {bad[:3].tolist()}."
            )
        if values.min() < 0 or values.max() > MAX_ID:
            return check_id_range(
                name, np.clip(values, -1, MAX_ID + 1).astype(np.int64)
            )
    elif values.dtype.kind not in "iu":
        raise ValueError(
            f"Column {name!r} must hold integer ids, not {values.dtype} "
            f"(e.g. {values[:3].tolist()})."
        )
    elif values.dtype.kind == "u" and values.size and values.max() > MAX_ID:
        return check_id_range(name, np.full(1, MAX_ID + 1))
    return check_id_range(name, values.astype(np.int64, copy=False))


def _object_ids(name: str, values: np.ndarray) -> np.ndarray:
    """Python objects (JSON mixing types, huge integers) as an int64 array."""
    if any(value is None for value in values):
        raise ValueError(f"Column {name!r} has missing value(s).")
    if any(isinstance(value, (bool, np.bool_)) for value in values):
        raise ValueError(f"Column {name!r} must hold integer ids, not booleans.")
    if not all(
        isinstance(value, (int, float, np.integer, np.floating)) for value in values
    ):
        raise ValueError(
            f"Column {name!r} must hold integer ids, not {values[:3].tolist()}."
        )
    if any(isinstance(value, int) and not 0 <= value <= MAX_ID for value in values):
        return check_id_range(name, np.full(1, -1))
    return np.asarray(values.tolist(), dtype=np.float64)


def _lookup(index: IdIndex, ids: pl.Series) -> pl.Series:
    return pl.Series(index.lookup(ids.to_numpy()), dtype=pl.Int64)


def score_indices(
    scorer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    users: np.ndarray,
    movies: np.ndarray,
    batch_rows: int = SCORE_BATCH_ROWS,
) -> np.ndarray:
    """Predictions (float64) for mapped index pairs (``-1`` unknown), by ``scorer``
    (a model's ``predict`` or a :class:`PairScorer`), ``batch_rows`` at a time."""
    predictions = np.empty(len(users), dtype=np.float64)
    users, movies = torch.from_numpy(users), torch.from_numpy(movies)
    # Row gathers are bound by memory, not arithmetic: one thread is faster than
    # several contending ones, and leaves the other cores to other requests.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for start in range(0, len(predictions), batch_rows):
                stop = start + batch_rows
                predictions[start:stop] = scorer(users[start:stop], movies[start:stop])
    finally:
        torch.set_num_threads(threads)
    return predictions


def _score(model: RatingModel, indexed: pl.DataFrame) -> pl.Series:
    predictions = score_indices(
        model.predict,
        indexed["userIdMapped"].to_numpy().astype(np.int64),
        indexed["movieIdMapped"].to_numpy().astype(np.int64),
    )
    return pl.Series("prediction", predictions, dtype=pl.Float64)


def score_pairs(
    served: ServedModel, users: np.ndarray, movies: np.ndarray
) -> dict[str, np.ndarray]:
    """``prediction``, ``known_user`` and ``known_movie`` of each pair of validated
    original ids (int64), by the served model's fast path: the dense id lookups and its
    :class:`PairScorer`. The pipeline's pair predictions and the MLflow model's both
    come from here."""
    user_index = served.user_lookup(users)
    movie_index = served.movie_lookup(movies)
    scorer = served.scorer
    return {
        "prediction": score_indices(scorer, user_index, movie_index, scorer.batch_rows),
        "known_user": user_index >= 0,
        "known_movie": movie_index >= 0,
    }


def predict_pairs(served: ServedModel, pairs: pl.DataFrame) -> pl.DataFrame:
    """Predicted rating of each (userId, movieId) pair, in request order, with flags."""
    pairs = validate_pairs(pairs)
    if pairs.is_empty():
        return pl.DataFrame(schema=PAIR_PREDICTIONS_SCHEMA)
    scored = score_pairs(
        served, pairs["userId"].to_numpy(), pairs["movieId"].to_numpy()
    )
    return pairs.with_columns(
        pl.Series(name, values) for name, values in scored.items()
    ).select(PAIR_PREDICTIONS_SCHEMA.names())


def users_to_rank(served: ServedModel, user_ids: Sequence[int]) -> pl.DataFrame:
    """The distinct ``user_ids``, ascending, with their index and known flag; warns
    about the users unseen in training."""
    distinct = pl.Series("userId", user_ids, dtype=pl.Int64).unique().sort()
    users = pl.DataFrame(
        [distinct, _lookup(served.users, distinct).alias("userIdMapped")]
    ).with_columns(known_user=pl.col("userIdMapped") != UNKNOWN_INDEX)
    unknown = users.filter(~pl.col("known_user"))["userId"].to_list()
    if unknown:
        logger.warning(
            "Users %s are unseen in training: they get the fallback ranking.", unknown
        )
    return users


def _best_candidates(
    model: RatingModel, candidates: pl.DataFrame, top_k: int
) -> pl.DataFrame:
    """The ``top_k`` best-predicted candidates of each user; ties by ascending movieId."""
    return (
        candidates.with_columns(_score(model, candidates))
        .sort(["userId", "prediction", "movieId"], descending=[False, True, False])
        .group_by("userId", maintain_order=True)
        .head(top_k)
    )


def recommend_top_k(
    served: ServedModel, user_ids: Sequence[int], rated: pl.DataFrame, top_k: int
) -> pl.DataFrame:
    """The ``top_k`` (>= 1) best-predicted known movies per user, excluding ``rated``
    pairs.

    Users unseen in training get the model's fallback ranking (for biased models, the
    movie biases). Ties are broken by ascending movieId so the output is deterministic.
    """
    movies = served.candidate_movies
    if not user_ids or movies.is_empty():
        return pl.DataFrame(schema=RECOMMENDATIONS_SCHEMA)
    users = users_to_rank(served, user_ids)
    rated = rated.select(pl.col(PAIR_COLUMNS).cast(pl.Int64)).join(
        users, on="userId", how="semi"
    )
    users_per_chunk = max(1, MAX_SCORED_PAIRS // movies.height)
    chunks = [
        _best_candidates(
            served.model,
            user_chunk.join(movies, how="cross").join(
                rated, on=list(PAIR_COLUMNS), how="anti"
            ),
            top_k,
        )
        for user_chunk in users.iter_slices(users_per_chunk)
    ]
    return (
        pl.concat(chunks)
        .with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("userId"))
        .select(RECOMMENDATIONS_SCHEMA.names())
    )
