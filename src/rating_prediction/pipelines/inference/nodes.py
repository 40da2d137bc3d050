"""Nodes of the ``inference`` pipeline that adapt :mod:`rating_prediction.serving` to the
catalog: the ``inference`` parameters, parsed once per node, and the split files.

The other nodes are the library functions themselves (``assemble_served_model``,
``predict_pairs``, ``split_fingerprint``); see :mod:`.pipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction.data.ids import STRING, IdIndex
from rating_prediction.models.config import ModelConfig
from rating_prediction.parameters import InferenceParameters, ParameterError, parse
from rating_prediction.runtime.progress import Progress
from rating_prediction.serving.bundle import ServedModel, select_served_variant
from rating_prediction.serving.foldin import (
    FoldedUsers,
    can_fold_in,
    fold_in_to_recommend,
    own_rated,
)
from rating_prediction.serving.prediction import id_types, predict_pairs
from rating_prediction.serving.ranker import (
    RankerChoice,
    feedback_of,
    select_served_ranker,
)
from rating_prediction.serving.rated import RatedIndex
from rating_prediction.serving.recommend import (
    recommend_all,
    recommend_users,
    recommendation_exclusions,
)
from rating_prediction.serving.request_files import RequestFile, RequestTable
from rating_prediction.serving.request_ids import PAIRS_SCHEMA, pairs_schema
from rating_prediction.serving.similar import similar_movies

# The userId of the new user of `inference.fold_in` in its recommendations: no
# MovieLens user has it. For a data set whose user ids are strings: the empty string,
# which no user has either (an id is never empty).
NEW_USER_ID = -1
NEW_USER_STRING_ID = ""
# Where to put example requests that fit the data set's ids.
OWN_EXAMPLES = (
    "set your own examples in conf/local/parameters_inference.yml, or [] for none"
)
# Partition names are zero-padded to at least this many digits, so they sort in request
# order (PartitionedDataset saves them, and polars reads the folder, in name order).
PARTITION_DIGITS = 5

logger = logging.getLogger(__name__)


def offer_trained_model(
    model_config: dict[str, Any], model_weights: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A variant's config and weights, handed out of its namespace as one candidate
    for a node that chooses among the variants: :func:`select_trained_model`,
    :func:`select_trained_ranker`, the evaluation's
    ``compare_best_ranker_to_popularity``."""
    return model_config, model_weights


def select_trained_model(
    inference: dict[str, Any], *trained: tuple[dict[str, Any], dict[str, torch.Tensor]]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The config and weights of ``inference.served_variant`` (``best``: the lowest
    held-out val loss) among ``trained``, every variant's (config, weights)."""
    served_variant = parse(InferenceParameters, inference, "inference").served_variant
    by_variant = {config["variant"]: (config, weights) for config, weights in trained}
    held_out_val_mse = {
        variant: config["best_val_loss"] for variant, (config, _) in by_variant.items()
    }
    variant = select_served_variant(held_out_val_mse, served_variant)
    logger.debug("Serving the %s model (served_variant=%s).", variant, served_variant)
    return by_variant[variant]


def select_trained_ranker(
    inference: dict[str, Any],
    training: dict[str, Any],
    *trained: tuple[dict[str, Any], dict[str, torch.Tensor]],
) -> RankerChoice:
    """The ranker that answers ``recommend``, fold-in and ``similar`` among
    ``trained``, every ranker's (config, weights): ``inference.served_ranker``
    (``best``: the highest held-out val NDCG@K), with its feedback settings from
    ``training``; none (the rating model answers them, as before rankers were served)
    for ``none`` or when no such ranker was trained."""
    served_ranker = parse(InferenceParameters, inference, "inference").served_ranker
    by_variant = {config["variant"]: (config, weights) for config, weights in trained}
    held_out_val_ndcg = {
        name: config.get("best_val_ndcg") for name, (config, _) in by_variant.items()
    }
    ranker = select_served_ranker(held_out_val_ndcg, served_ranker)
    if ranker is None:
        logger.info(
            "No ranker served (served_ranker=%s; trained rankers: %s): the rating "
            "model answers recommend, fold-in and similar.",
            served_ranker,
            ", ".join(by_variant) or "none",
        )
        return RankerChoice()
    ndcg = held_out_val_ndcg[ranker]
    logger.debug(
        "Serving the %s ranker (held-out val NDCG@K: %s) for recommend, fold-in and "
        "similar (served_ranker=%s).",
        ranker,
        "not recorded" if ndcg is None else f"{ndcg:.4f}",
        served_ranker,
    )
    config, weights = by_variant[ranker]
    return RankerChoice(
        ModelConfig.model_validate(config), weights, feedback_of(ranker, training)
    )


def parameter_ids(
    key: str, ids: Sequence[int | str], index: IdIndex, kind: str
) -> np.ndarray:
    """``ids``, the ``kind`` (``user`` or ``movie``) ids of the parameter ``key``, as
    ``index`` holds them (int64 or strings). ``key`` marks each id's position in the
    list with ``{}`` (``inference.pairs.{}.0``).

    Raises:
        ParameterError: If an id is not of the served model's id type (integer ids in
            a data set whose ids are strings, or the other way round), naming each
            such id's key.
    """
    strings = index.id_type == STRING
    wrong = [row for row, value in enumerate(ids) if isinstance(value, str) != strings]
    if wrong:
        raise ParameterError(
            "Invalid parameters (conf/base/parameters_*.yml, conf/<env>/ or --params):\n"
            + "\n".join(
                f"- '{key.format(row)}': holds "
                f"{'an integer' if strings else 'a string'} id "
                f"({ids[row]!r}) but this data set's {kind} ids are "
                f"{index.id_type}s: {OWN_EXAMPLES}"
                for row in wrong
            )
        )
    return index.as_ids(list(ids))


def pairs_from_parameters(
    inference: dict[str, Any], served_model: ServedModel | None = None
) -> pl.DataFrame:
    """``inference.pairs``, ``[[userId, movieId], ...]``, as a table, its ids in the
    served model's types (integers without one)."""
    pairs = parse(InferenceParameters, inference, "inference").pairs
    if served_model is None:
        return pl.DataFrame(pairs, schema=PAIRS_SCHEMA, orient="row")
    users = parameter_ids(
        "inference.pairs.{}.0", [user for user, _ in pairs], served_model.users, "user"
    )
    movies = parameter_ids(
        "inference.pairs.{}.1",
        [movie for _, movie in pairs],
        served_model.movies,
        "movie",
    )
    return pl.DataFrame(
        {"userId": users, "movieId": movies},
        schema=pairs_schema(id_types(served_model)),
    )


def collect_rated_pairs(
    train_ratings: pl.DataFrame, val_ratings: pl.DataFrame, test_ratings: pl.DataFrame
) -> pl.DataFrame:
    """Every (userId, movieId) rated in any split: never recommended again by the
    rating model (a served ranker excludes its known history, train + val, as its
    ranking evaluation does)."""
    return pl.concat(
        [
            ratings.select("userId", "movieId")
            for ratings in (train_ratings, val_ratings, test_ratings)
        ]
    )


def popularity_weight_from_parameters(inference: dict[str, Any]) -> float:
    """``inference.recommend.popularity_weight``: the popularity blend's weight, saved
    with the served model as its MLflow model's default."""
    return parse(
        InferenceParameters, inference, "inference"
    ).recommend.popularity_weight


def recommend_movies(
    served_model: ServedModel, rated_pairs: pl.DataFrame, inference: dict[str, Any]
) -> pl.DataFrame:
    """Top-``inference.recommend.top_k`` unrated movies for each of
    ``inference.recommend.user_ids``, with titles and scores (predicted ratings for the
    rating model), by the served ranker when there is one, ranked by the popularity
    blend of weight ``inference.recommend.popularity_weight`` (0: by the score)."""
    recommend = parse(InferenceParameters, inference, "inference").recommend
    return recommend_users(
        served_model,
        parameter_ids(
            "inference.recommend.user_ids.{}",
            recommend.user_ids,
            served_model.users,
            "user",
        ),
        rated_pairs,
        recommend.top_k,
        recommend.popularity_weight,
    )


def find_similar_movies(
    served_model: ServedModel, inference: dict[str, Any]
) -> pl.DataFrame:
    """The ``inference.similar.top_k`` movies most like each of
    ``inference.similar.movie_ids``, with titles and similarities (the served
    ranker's scores, or the rating model's cosine similarities)."""
    similar = parse(InferenceParameters, inference, "inference").similar
    movie_ids = parameter_ids(
        "inference.similar.movie_ids.{}",
        similar.movie_ids,
        served_model.movies,
        "movie",
    )
    return similar_movies(served_model, movie_ids, similar.top_k)


def recommend_for_new_user(
    served_model: ServedModel, inference: dict[str, Any]
) -> pl.DataFrame:
    """Top-K for a user unseen in training, folded in from ``inference.fold_in.ratings``
    (userId ``NEW_USER_ID``) by the served ranker, or without one by the rating model;
    without usable ratings, or for a rating variant that cannot fold in, the
    unknown-user fallback ranking. The movies rated are never recommended.
    For a data set whose user ids are strings, the new user is ``NEW_USER_STRING_ID``.

    Raises:
        ParameterError: If a rating lies outside the served model's rating scale, or
            a movie id is not of the served model's id type.
    """
    settings = parse(InferenceParameters, inference, "inference").fold_in
    movies = parameter_ids(
        "inference.fold_in.ratings.{}.0",
        [movie for movie, _ in settings.ratings],
        served_model.movies,
        "movie",
    )
    ratings = np.array([rating for _, rating in settings.ratings], dtype=np.float64)
    _check_rating_scale(served_model, ratings)
    new_user = (
        NEW_USER_STRING_ID if served_model.users.id_type == STRING else NEW_USER_ID
    )
    user = served_model.users.as_ids([new_user])
    own = (np.repeat(user, len(movies)), movies, ratings)
    if (
        settings.ratings
        and served_model.ranker is None
        and not can_fold_in(served_model)
    ):
        logger.warning("%s cannot fold in a user: fallback.", served_model.variant)
        folded = FoldedUsers(None, own_rated(served_model, user, *own[:2]))
    else:
        folded = fold_in_to_recommend(served_model, user, own, settings.regularization)
    return recommend_all(
        served_model, user, RatedIndex.empty(0), settings.top_k, folded=folded
    )


def _check_rating_scale(served_model: ServedModel, ratings: np.ndarray) -> None:
    """A :class:`ParameterError` naming each ``inference.fold_in.ratings`` entry whose
    rating lies outside the served model's rating scale (the data set's)."""
    low, high = served_model.model.rating_min, served_model.model.rating_max
    outside = np.flatnonzero(~((ratings >= low) & (ratings <= high)))
    if outside.size:
        raise ParameterError(
            "Invalid parameters (conf/base/parameters_*.yml, conf/<env>/ or --params):\n"
            + "\n".join(
                f"- 'inference.fold_in.ratings.{row}.1': {ratings[row]} lies outside "
                f"the served model's rating scale {low}..{high} (the data set's): "
                "fix or remove it"
                for row in outside
            )
        )


def _checked(
    served_model: ServedModel, requests: RequestTable | RequestFile
) -> RequestTable:
    """A request file read (its ids checked, in one pass) in the served model's id
    types; a table already read as it is."""
    if isinstance(requests, RequestFile):
        return requests.read(id_types(served_model))
    return requests


def predict_pair_requests(
    served_model: ServedModel,
    pair_requests: RequestTable | RequestFile | None,
    inference: dict[str, Any],
) -> dict[str, Callable[[], pl.DataFrame]]:
    """The pairs of the ``pair_requests`` file (none when it is absent) predicted as
    :func:`~rating_prediction.serving.predict_pairs` predicts them, in file order,
    ``inference.request_files.batch_size`` rows per partition. The whole file is
    checked against the served model's id types first."""
    batch_size = parse(
        InferenceParameters, inference, "inference"
    ).request_files.batch_size
    if pair_requests is None:
        pair_requests = RequestTable.from_frame(
            pl.DataFrame(schema=pairs_schema(id_types(served_model))),
            "no pair requests",
        )
    pair_requests = _checked(served_model, pair_requests)
    return batch_partitions(
        pair_requests, batch_size, partial(predict_pairs, served_model)
    )


def recommend_for_all_users(
    served_model: ServedModel,
    rated_pairs: pl.DataFrame,
    user_requests: RequestTable | RequestFile | None,
    inference: dict[str, Any],
) -> dict[str, Callable[[], pl.DataFrame]]:
    """Top-``inference.batch_recommend.top_k`` unrated movies for each user of the
    ``user_requests`` file (in file order, one list per row) or, when it is absent, for
    every user seen in training (ascending), ranked and excluded as
    :func:`recommend_movies` ranks (``inference.recommend.popularity_weight``);
    ``inference.request_files.batch_size`` users per partition, scored in blocks of
    ``inference.batch_recommend.block_size`` users."""
    parameters = parse(InferenceParameters, inference, "inference")
    if user_requests is None:
        known = pl.DataFrame(
            {"userId": served_model.users.known_ids},
            schema={"userId": served_model.users.dtype},
        )
        user_requests = RequestTable.from_frame(known, "every user seen in training")
    user_requests = _checked(served_model, user_requests)
    settings = parameters.batch_recommend
    recommend = partial(
        _recommend_batch,
        served_model,
        recommendation_exclusions(served_model, rated_pairs),
        Progress("recommending", user_requests.rows, "users", logger=logger),
        top_k=settings.top_k,
        block_size=settings.block_size,
        popularity_weight=parameters.recommend.popularity_weight,
    )
    return batch_partitions(
        user_requests, parameters.request_files.batch_size, recommend
    )


def _recommend_batch(
    served_model: ServedModel,
    rated: RatedIndex,
    progress: Progress,
    users: pl.DataFrame,
    **settings: Any,
) -> pl.DataFrame:
    """One partition's recommendations, counted in ``progress`` (closed with the
    last one: the partitions are answered in order as they are saved)."""
    answer = recommend_all(served_model, users["userId"].to_numpy(), rated, **settings)
    progress.advance(users.height)
    if progress.done >= (progress.total or 0):
        progress.close()
    return answer


def batch_partitions(
    requests: RequestTable,
    batch_size: int,
    answer: Callable[[pl.DataFrame], pl.DataFrame],
) -> dict[str, Callable[[], pl.DataFrame]]:
    """One partition per batch of ``batch_size`` requests (at least one, maybe empty),
    answered by ``answer`` only when the ``PartitionedDataset`` saves it, so one batch
    is in memory at a time. The names sort in request order."""
    count = requests.batch_count(batch_size)
    width = max(PARTITION_DIGITS, len(str(count - 1)))
    return {
        f"batch-{index:0{width}d}": partial(
            _answer_batch, requests, index, batch_size, answer
        )
        for index in range(count)
    }


def _answer_batch(
    requests: RequestTable,
    index: int,
    batch_size: int,
    answer: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    return answer(requests.batch(index, batch_size))
