"""Serving building blocks: the served-model bundle, id lookup, pair predictions, top-K.

Requests speak ORIGINAL MovieLens ids; the model speaks 0-based mapped ids. A user or
movie is *known* when it has a mapped id AND appears in the training split; anything
else gets index ``-1``, which :meth:`RatingModel.predict` answers with the model's
natural fallback (zero factors and biases: the global mean plus whatever is known).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from rating_prediction.models import MODEL_VARIANTS, RatingModel, load_trained_model

BEST_VARIANT = "best"
UNKNOWN_INDEX = -1
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

# The MLflow model's contract: original ids in; prediction and known flags out.
PAIR_PREDICTIONS_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("long", "userId"), ColSpec("long", "movieId")]),
    outputs=Schema(
        [
            ColSpec("long", "userId"),
            ColSpec("long", "movieId"),
            ColSpec("double", "prediction"),
            ColSpec("boolean", "known_user"),
            ColSpec("boolean", "known_movie"),
        ]
    ),
)

# Bounds the (user, candidate movie) pairs scored at once when recommending.
MAX_SCORED_PAIRS = 2_000_000


@dataclass(frozen=True)
class ServedModel:
    """One trained variant plus the id lookups it needs to answer in original ids.

    ``known_users`` (userId, userIdMapped) and ``known_movies`` (movieId, movieIdMapped,
    title) hold only the ids seen in the training split.
    """

    variant: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    known_users: pl.DataFrame
    known_movies: pl.DataFrame

    def load_model(self) -> RatingModel:
        return load_trained_model(self.config, self.state_dict)


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
    if served_variant not in MODEL_VARIANTS:
        raise ValueError(
            f"Unknown served variant {served_variant!r}; valid values: "
            f"{', '.join([BEST_VARIANT, *MODEL_VARIANTS])}."
        )
    return served_variant


def assemble_served_model(
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    *,
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    train_ratings: pl.DataFrame,
    movies: pl.DataFrame,
) -> ServedModel:
    """Bundles a trained variant with the id mappings restricted to ids seen in training."""
    known_users = user_mapping.join(
        train_ratings.select("userId").unique(), on="userId", how="semi"
    ).select(pl.col("userId", "userIdMapped").cast(pl.Int64))
    known_movies = (
        movie_mapping.join(
            train_ratings.select("movieId").unique(), on="movieId", how="semi"
        )
        .join(movies.select("movieId", "title"), on="movieId", how="left")
        .select(pl.col("movieId", "movieIdMapped").cast(pl.Int64), "title")
    )
    # Stale files (a mapping rebuilt without retraining) would index past the embeddings.
    for table, column, size in (
        (known_users, "userIdMapped", config["n_users"]),
        (known_movies, "movieIdMapped", config["n_movies"]),
    ):
        if not table.is_empty() and table[column].max() >= size:
            raise ValueError(
                f"{column} reaches {table[column].max()} but the {config['variant']} "
                f"model has only {size} rows: the id mappings and the trained model "
                "come from different runs; rerun training."
            )
    return ServedModel(
        variant=config["variant"],
        config=config,
        state_dict=state_dict,
        known_users=known_users,
        known_movies=known_movies,
    )


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
    return ids.cast(pl.Int64)


def check_integer_ids(values: list[Any], what: str) -> None:
    """Raises a clear error unless every value is a Python int (bools excluded)."""
    not_ids = [
        value
        for value in values
        if isinstance(value, bool) or not isinstance(value, int)
    ]
    if not_ids:
        raise ValueError(f"{what} must be integers; got {not_ids[:3]}.")


def index_pairs(served: ServedModel, pairs: pl.DataFrame) -> pl.DataFrame:
    """Adds the mapped ids (``UNKNOWN_INDEX`` when unseen in training) and known flags."""
    return (
        pairs.join(served.known_users, on="userId", how="left", maintain_order="left")
        .join(
            served.known_movies.select("movieId", "movieIdMapped"),
            on="movieId",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            known_user=pl.col("userIdMapped").is_not_null(),
            known_movie=pl.col("movieIdMapped").is_not_null(),
        )
        .with_columns(pl.col("userIdMapped", "movieIdMapped").fill_null(UNKNOWN_INDEX))
    )


def _score(model: RatingModel, indexed: pl.DataFrame) -> pl.Series:
    predictions = model.predict(
        torch.tensor(indexed["userIdMapped"].to_numpy(), dtype=torch.long),
        torch.tensor(indexed["movieIdMapped"].to_numpy(), dtype=torch.long),
    )
    return pl.Series("prediction", predictions.numpy(), dtype=pl.Float64)


def predict_pairs(served: ServedModel, pairs: pl.DataFrame) -> pl.DataFrame:
    """Predicted rating of each (userId, movieId) pair, in request order, with flags."""
    indexed = index_pairs(served, validate_pairs(pairs))
    if indexed.is_empty():
        return pl.DataFrame(schema=PAIR_PREDICTIONS_SCHEMA)
    return indexed.with_columns(_score(served.load_model(), indexed)).select(
        PAIR_PREDICTIONS_SCHEMA.names()
    )


def recommend_top_k(
    served: ServedModel, user_ids: list[int], rated: pl.DataFrame, top_k: int
) -> pl.DataFrame:
    """The ``top_k`` best-predicted known movies per user, excluding ``rated`` pairs.

    Users unseen in training get the model's fallback ranking (for biased models, the
    movie biases). Ties are broken by ascending movieId so the output is deterministic.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
    check_integer_ids(user_ids, "User ids")
    if not user_ids or served.known_movies.is_empty():
        return pl.DataFrame(schema=RECOMMENDATIONS_SCHEMA)
    users = (
        pl.DataFrame({"userId": user_ids}, schema={"userId": pl.Int64})
        .unique()
        .sort("userId")
        .join(served.known_users, on="userId", how="left", maintain_order="left")
        .with_columns(
            known_user=pl.col("userIdMapped").is_not_null(),
            userIdMapped=pl.col("userIdMapped").fill_null(UNKNOWN_INDEX),
        )
    )
    rated = rated.select(pl.col(PAIR_COLUMNS).cast(pl.Int64)).join(
        users, on="userId", how="semi"
    )
    model = served.load_model()
    users_per_chunk = max(1, MAX_SCORED_PAIRS // served.known_movies.height)
    chunks = []
    for user_chunk in users.iter_slices(users_per_chunk):
        candidates = user_chunk.join(served.known_movies, how="cross").join(
            rated, on=list(PAIR_COLUMNS), how="anti"
        )
        chunks.append(
            candidates.with_columns(_score(model, candidates))
            .sort(["userId", "prediction", "movieId"], descending=[False, True, False])
            .group_by("userId", maintain_order=True)
            .head(top_k)
        )
    return (
        pl.concat(chunks)
        .with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("userId"))
        .select(RECOMMENDATIONS_SCHEMA.names())
    )
