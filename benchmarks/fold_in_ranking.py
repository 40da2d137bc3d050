"""NDCG@K of new users folded in by the served model, against the popularity list.

The acceptance protocol of the rankers' fold-in, on a real release (ml-latest-small):

1. A seeded sample of users (``--held-out-fraction`` of those with at least
   ``--min-ratings`` ratings) is held out; each ranker (``ease``, ``als``, ``bpr``,
   settings from conf/base/parameters_training.yml) is fitted by its own fit function
   on the ratings of the *other* users only, so the held-out users are new to it.
2. Each held-out user's ratings are split 80/20 (seeded, per user).
3. A served model with that ranker (``assemble_served_model(..., ranker=...)``) is
   asked for each held-out user's top K the way the MLflow model is over REST
   (``answer_request``, ``task: recommend``): one request whose rows are the users'
   80% with their ratings (the fold-in rows); the served model excludes those movies.
4. The lists are scored against the 20% by the evaluation's own ranking metrics
   (``evaluation.ranking``: history = the 80%, target = the 20%, relevant = a rating
   of at least 4, candidates = the movies the other users rated; users without a
   relevant rating in their 20% left out), the served list standing for the scores.
   The ``popularity`` entry is the evaluation's popularity list (most-rated movies
   among the other users' ratings), the user's 80% excluded, on the same task.

Run (``--data``: the folder holding ``ml-latest-small/``, default ../shared/data):

    python benchmarks/fold_in_ranking.py [--data ../shared/data] [--seed 42]

Prints each entry's mean NDCG@K over the ranked held-out users, and their number.
tests/test_real_data_fold_in.py runs the same protocol and asserts it.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import torch
import yaml

from rating_prediction.data.schema import MAPPED_RATINGS_SCHEMA
from rating_prediction.evaluation.ranking import (
    RankingTask,
    candidate_rating_counts,
    ranking_metrics,
    ranking_task,
)
from rating_prediction.models.config import build_model
from rating_prediction.models.scoring import Scorer, count_scorer
from rating_prediction.models.variants import variant
from rating_prediction.movielens.readers import read_movies, read_ratings
from rating_prediction.movielens.releases import locate_release
from rating_prediction.parameters import parse
from rating_prediction.pipelines.data_processing.nodes import (
    apply_id_mappings,
    create_movie_mapping,
    create_user_mapping,
)
from rating_prediction.serving.bundle import ServedModel, assemble_served_model
from rating_prediction.serving.ranker import (
    RankerChoice,
    feedback_of,
    ranker_variants,
)
from rating_prediction.serving.requests import answer_request
from rating_prediction.training.data import TrainingData

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RELEASE = "ml-latest-small"
TRAINING_CONF = PROJECT_ROOT / "conf" / "base" / "parameters_training.yml"
K = 10
# Relevant: 4 stars and up (the evaluation's relevance_fraction 0.75 of MovieLens's
# 0.5..5 scale is 3.875: the same ratings on half-star steps).
RELEVANCE_THRESHOLD = 4.0
HISTORY_FRACTION = 0.8
POPULARITY = "popularity"
# Added to a held-out user's id in the request: an id outside the served model's
# mapping, as a new user's is (ml-latest-small's ids stop at 610).
NEW_USER_OFFSET = 1_000_000
# Every pair of a ranked block at once: a few dozen users x ~9,700 movies.
MAX_PAIRS = 10**7


@dataclass(frozen=True)
class HeldOut:
    """The release split for the protocol: the other users' ratings (what the rankers
    are fitted on) and the held-out users' ratings, 80% (their fold-in history) and
    20% (the target); every frame mapped, with the mappings of all users and movies."""

    others: pl.DataFrame
    history: pl.DataFrame
    target: pl.DataFrame
    user_mapping: pl.DataFrame
    movie_mapping: pl.DataFrame
    movies: pl.DataFrame


def read_release(data: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The release's ratings and movies, read in place from ``data``."""
    source = locate_release(data, RELEASE)
    if source is None:
        raise FileNotFoundError(f"{data / RELEASE} holds no {RELEASE} release.")
    return read_ratings(source), read_movies(source)


def hold_out(
    ratings: pl.DataFrame,
    movies: pl.DataFrame,
    *,
    fraction: float,
    min_ratings: int,
    seed: int,
) -> HeldOut:
    """A seeded ``fraction`` of the users with at least ``min_ratings`` ratings held
    out, each one's ratings split ``HISTORY_FRACTION`` / the rest at random (seeded)."""
    user_mapping = create_user_mapping(ratings)
    movie_mapping = create_movie_mapping(ratings)
    mapped = apply_id_mappings(ratings, user_mapping, movie_mapping)
    eligible = mapped.group_by("userId").len().filter(pl.col("len") >= min_ratings)
    held_out_users = eligible.sort("userId").sample(
        fraction=fraction, seed=seed, shuffle=True
    )
    own = mapped.join(held_out_users.select("userId"), on="userId", how="semi")
    order = np.random.default_rng(seed).permutation(own.height)
    own = own.with_columns(pl.Series("draw", order)).with_columns(
        pl.col("draw").rank("ordinal").over("userId").alias("place"),
        pl.len().over("userId").alias("n_own"),
    )
    in_history = pl.col("place") <= (HISTORY_FRACTION * pl.col("n_own")).round()
    columns = list(MAPPED_RATINGS_SCHEMA)
    return HeldOut(
        others=mapped.join(own.select("userId").unique(), on="userId", how="anti"),
        history=own.filter(in_history).select(columns).sort(columns[-2:]),
        target=own.filter(~in_history).select(columns).sort(columns[-2:]),
        user_mapping=user_mapping,
        movie_mapping=movie_mapping,
        movies=movies,
    )


def training_block() -> dict[str, Any]:
    """The ``training`` block of conf/base/parameters_training.yml."""
    return yaml.safe_load(TRAINING_CONF.read_text())["training"]


def fit_ranker(name: str, training: dict[str, Any], held_out: HeldOut) -> RankerChoice:
    """``name`` fitted by its registry fit function, with its conf defaults, on the
    other users' ratings only, chosen as the served ranker."""
    entry = variant(name)
    options = parse(entry.parameters, training.get(name, {}), f"training.{name}")
    data = TrainingData(
        train=held_out.others,
        val=held_out.others.clear(),
        n_users=held_out.user_mapping.height,
        n_movies=held_out.movie_mapping.height,
    )
    weights, config, _ = entry.fit_function()(name, options, data)
    return RankerChoice(config, weights, feedback_of(name, training))


def served_with(ranker: RankerChoice, held_out: HeldOut) -> ServedModel:
    """A served model whose ranker is ``ranker``, knowing the other users only. Its
    rating model (random biased MF factors) answers ``predict`` alone, never used here.
    """
    n_users, n_movies = held_out.user_mapping.height, held_out.movie_mapping.height
    rating_config = {
        "variant": "biased_mf",
        "n_users": n_users,
        "n_movies": n_movies,
        "model_kwargs": {"embedding_dim": 4, "global_mean": 3.5},
    }
    torch.manual_seed(0)
    return assemble_served_model(
        rating_config,
        build_model(rating_config).state_dict(),
        user_mapping=held_out.user_mapping,
        movie_mapping=held_out.movie_mapping,
        train_ratings=held_out.others,
        val_ratings=held_out.others.clear(),
        movies=held_out.movies,
        ranker=ranker,
    )


def fold_in_request(history: pl.DataFrame) -> pd.DataFrame:
    """The REST request of the held-out users' own ratings, one row per rating, each
    user under a new id (``NEW_USER_OFFSET`` added: an id the served model has never
    seen, as a new user's is)."""
    return history.select(
        pl.col("userId") + NEW_USER_OFFSET, "movieId", "rating"
    ).to_pandas()


def served_lists(served: ServedModel, history: pl.DataFrame) -> pl.DataFrame:
    """The served model's top K for each held-out user, folded in from their history,
    as the MLflow model answers ``task: recommend``; by their own userId again."""
    answer = answer_request(
        served, fold_in_request(history), {"task": "recommend", "k": K}
    )
    lists = pl.from_pandas(answer)
    return lists.with_columns(
        (pl.col("userId") - NEW_USER_OFFSET).cast(history["userId"].dtype)
    )


def listed_scorer(lists: pl.DataFrame, task: RankingTask, held_out: HeldOut) -> Scorer:
    """Scores that rank each user's served list first, in its order (``K + 1 -
    rank``), and nothing else (``-inf``): the evaluation's metrics of those lists."""
    mapped = lists.join(held_out.user_mapping, on="userId").join(
        held_out.movie_mapping, on="movieId"
    )
    columns = np.searchsorted(task.candidates, mapped["movieIdMapped"].to_numpy())
    if not np.array_equal(task.candidates[columns], mapped["movieIdMapped"]):
        raise ValueError("The served model recommended a movie outside the catalogue.")
    users = mapped["userIdMapped"].to_numpy()
    values = (K + 1 - mapped["rank"].to_numpy()).astype(np.float64)

    def score(block: np.ndarray) -> np.ndarray:
        scores = np.full((block.size, task.candidates.size), -np.inf)
        rows = np.searchsorted(block, users)
        listed = block[rows.clip(max=block.size - 1)] == users
        scores[rows[listed], columns[listed]] = values[listed]
        return scores

    return score


@dataclass(frozen=True)
class FoldInResults:
    """What the protocol measured.

    Attributes:
        ndcg: Mean NDCG@K over the ranked users, by entry (``popularity`` first, then
            each ranker).
        n_ranked: The held-out users ranked (with a relevant rating in their 20%).
        lists: Each ranker's served answer (by the held-out users' own userIds).
    """

    ndcg: dict[str, float]
    n_ranked: int
    lists: dict[str, pl.DataFrame]


def ndcg(task: RankingTask, scorer: Scorer) -> float:
    return ranking_metrics(task, scorer, K, MAX_PAIRS)[f"ndcg@{K}"]


def fold_in_ndcg(held_out: HeldOut, rankers: list[str]) -> FoldInResults:
    """Each of ``rankers``' and the popularity list's mean NDCG@K over the held-out
    users with a relevant target rating; printed as they come."""
    task = ranking_task(
        held_out.history,
        held_out.target,
        RELEVANCE_THRESHOLD,
        catalogue=held_out.others,
    )
    counts = candidate_rating_counts(held_out.others, task.candidates)
    results = FoldInResults({POPULARITY: ndcg(task, count_scorer(counts))}, 0, {})
    print(f"{POPULARITY}: ndcg@{K} {results.ndcg[POPULARITY]:.4f}")
    training = training_block()
    for name in rankers:
        started = time.perf_counter()
        served = served_with(fit_ranker(name, training, held_out), held_out)
        lists = results.lists[name] = served_lists(served, held_out.history)
        results.ndcg[name] = ndcg(task, listed_scorer(lists, task, held_out))
        seconds = time.perf_counter() - started
        print(f"{name}: ndcg@{K} {results.ndcg[name]:.4f} ({seconds:.1f} s)")
    return replace(results, n_ranked=int(task.users.size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--held-out-fraction", type=float, default=0.1)
    parser.add_argument("--min-ratings", type=int, default=20)
    parser.add_argument("--rankers", nargs="+", choices=ranker_variants())
    args = parser.parse_args()
    ratings, movies = read_release(args.data)
    held_out = hold_out(
        ratings,
        movies,
        fraction=args.held_out_fraction,
        min_ratings=args.min_ratings,
        seed=args.seed,
    )
    results = fold_in_ndcg(held_out, args.rankers or ranker_variants())
    print(
        f"{results.n_ranked} held-out users ranked (seed {args.seed}, "
        f"{held_out.history['userId'].n_unique()} held out); "
        + ", ".join(f"{name} {value:.4f}" for name, value in results.ndcg.items())
    )


if __name__ == "__main__":
    main()
