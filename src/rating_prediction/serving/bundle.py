"""The served model: the trained rating variant that answers ``predict`` and, when one
was trained and chosen, the ranker that answers ``recommend``, fold-in and ``similar``
(:mod:`.ranker`), bundled with what they need to answer in original ids (the id lookups,
titles, rated movies, popularity); and the choice of which rating variant to serve.

Requests speak ORIGINAL ids (integers, or strings for a ratings file whose ids are
strings: the served model keeps their type); the model speaks 0-based mapped ids. A user or
movie is *known* when it has a mapped id AND appears in the training split (an
:class:`~rating_prediction.data.ids.IdIndex` decides); anything else gets index ``-1``,
which the scoring kernel answers with the model's natural fallback (zero factors and
biases: the global mean plus whatever is known).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction.data.ids import DenseLookup, IdIndex
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.scoring import PairScorer
from rating_prediction.models.variants import variant, variants_that

from .ranker import RankerChoice, RankerFeedback
from .rated import RatedIndex

logger = logging.getLogger(__name__)

BEST_VARIANT = "best"
# What the served model answers, each task by one model (`ServedModel.answered_by`).
TASKS = ("predict", "recommend", "similar", "fold_in")


@dataclass(frozen=True, eq=False)
class ServedRanker:
    """The ranker that answers ``recommend``, fold-in and ``similar``.

    Attributes:
        config: How to rebuild it (its ``config.json``).
        state_dict: Its trained weights.
        feedback: How its fit read ratings as interactions (a new user's too).
        users: Original userId to index (the served model's ids); known: the users in
            the ratings it was fitted on (train, or train + val when refitted).
        history: The movies each user rated in train + val (mapping positions): its
            known history, never recommended, as the ranking evaluation excludes it.
    """

    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    feedback: RankerFeedback
    users: IdIndex
    history: RatedIndex

    @property
    def variant(self) -> str:
        return self.config.variant

    @cached_property
    def model(self) -> RatingModel:
        """The trained ranker in eval mode, built from the weights on first use only."""
        return load_trained_model(self.config, self.state_dict)


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
        ranker: The ranker that answers ``recommend``, fold-in and ``similar``;
            ``None``: the rating model answers them too.
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
    ranker: ServedRanker | None = None

    @property
    def variant(self) -> str:
        return self.config.variant

    @property
    def answered_by(self) -> dict[str, str]:
        """The variant that answers each task: ``predict`` the rating model; the others
        the ranker when there is one."""
        ranking = self.variant if self.ranker is None else self.ranker.variant
        return {task: self.variant if task == "predict" else ranking for task in TASKS}

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
            schema={
                "movieId": self.movies.dtype,
                "movieIdMapped": pl.Int64,
                "title": pl.String,
            },
        )


def _fast_lookup(index: IdIndex) -> Callable[[np.ndarray], np.ndarray]:
    """A dense table for integer ids that fit one; a binary search otherwise (string
    ids, sparse integers)."""
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

    Raises:
        UnknownVariantError: If ``served_variant`` is neither ``best`` nor a variant.
        ValueError: If ``served_variant`` names a variant that predicts no ratings (a
            ranker such as ``ease``): the served model answers ``predict`` with it
            (a ranker is chosen by ``inference.served_ranker``).
    """
    if served_variant != BEST_VARIANT:
        entry = variant(served_variant, also_valid=(BEST_VARIANT,))
        if not entry.predicts_ratings:
            rating_models = ", ".join(variants_that("predicts_ratings"))
            raise ValueError(
                f"inference.served_variant {served_variant!r} ranks movies but "
                "predicts no ratings, and served_variant answers pair predictions "
                "(a ranker answers recommendations, fold-in and similar movies as "
                f"inference.served_ranker): choose best or one of {rating_models}."
            )
        return entry.name
    if not held_out_val_mse:
        raise ValueError("Cannot pick the best variant: no trained model variant.")
    return min(held_out_val_mse, key=held_out_val_mse.get)


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
    """The title of each known movie, in index order (null where ``movies`` has none);
    ``movies``' movieId has the mapping's type (integer or string)."""
    dtype = movie_index.dtype
    return pl.DataFrame(
        {"movieId": movie_index.known_ids}, schema={"movieId": dtype}
    ).join(
        movies.select(pl.col("movieId").cast(dtype), "title"),
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
    val_ratings: pl.DataFrame | None = None,
    ranker: RankerChoice | None = None,
) -> ServedModel:
    """Bundles a trained rating variant with the ids seen in training, the movie titles
    and each movie's number of training ratings; ``popularity_weight`` is the
    popularity blend's weight its MLflow model defaults to. With a chosen ``ranker``,
    that ranker answers ``recommend``, fold-in and ``similar``, its known history the
    ratings of train and ``val_ratings``.

    Raises:
        ValueError: If a mapping has more ids than a model has rows (the mapping was
            rebuilt without retraining, and its ids would index past the weights), or
            a ranker comes without ``val_ratings``.
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
        _assemble_ranker(ranker, user_mapping, movie_index, train_ratings, val_ratings),
    )
    _log_served(served)
    return served


def _log_served(served: ServedModel) -> None:
    """Which variant answers each task, and how many ids are known."""
    logger.info(
        "Served model: %s; %d known users, %d known movies.",
        ", ".join(f"{task} by {name}" for task, name in served.answered_by.items()),
        served.users.seen.sum(),
        served.movies.seen.sum(),
    )


def _assemble_ranker(
    choice: RankerChoice | None,
    user_mapping: pl.DataFrame,
    movie_index: IdIndex,
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame | None,
) -> ServedRanker | None:
    """The chosen ranker with its known users and its known history (train + val)."""
    if choice is None or choice.config is None:
        return None
    if val_ratings is None:
        raise ValueError(
            f"The served ranker {choice.config.variant} needs val_ratings: its known "
            "history (never recommended) is train + val, as its ranking evaluation's."
        )
    pairs = ["userIdMapped", "movieIdMapped"]
    history = pl.concat([train_ratings.select(pairs), val_ratings.select(pairs)])
    fitted_on = history if choice.config.refit_on_train_val else train_ratings
    users = IdIndex.from_training(user_mapping, fitted_on, "userId")
    _check_sizes(choice.config, users, movie_index)
    return ServedRanker(
        config=choice.config,
        state_dict=choice.state_dict,
        feedback=choice.feedback,
        users=users,
        history=RatedIndex.from_indices(
            history["userIdMapped"].to_numpy(),
            history["movieIdMapped"].to_numpy(),
            len(users),
        ),
    )
