"""A synthetic MovieLens-format release that models can learn like real data.

Each rating is ``global_mean + user bias + movie bias + <user factors, movie factors> +
noise``, rounded to the rating step (half or whole stars) and clipped to the scale. Who
rates what follows long-tailed (Zipf-like) user activity and movie popularity. Ratings
are made one block of users at a time and each block is appended to ``ratings.csv`` as
soon as it is made, so memory is bounded by a block (about ``_CHUNK_ROWS`` ratings)
whatever the size: the Netflix Prize's 100 million ratings included.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rating_prediction.data.schema import MOVIELENS_GENRES, RATING_MAX, RATINGS_SCHEMA
from rating_prediction.parameters import SyntheticSettings

logger = logging.getLogger(__name__)

# Bump when the generator's algorithm changes so existing samples are regenerated.
GENERATOR_VERSION = 2
SETTINGS_FILE = "generator.json"

# Ratings per block of users (one CSV write): bounds the generator's memory.
_CHUNK_ROWS = 2_000_000
# Blocks drawn at once (each holds about 2M ratings while it waits to be written).
_GENERATION_THREADS = 2
# Rounds of drawing with replacement and dropping repeats before a user's last
# missing movies are drawn by exponential keys (only very active users get there).
_REJECTION_ROUNDS = 4
# Each round draws this many times a user's missing movies: repeats are dropped.
_OVERSAMPLING = 1.25
# Users rating more than 1 / _HEAVY_SHARE of the movies draw by exponential keys
# (one pass over the movies) rather than by rounds of draws with many repeats.
_HEAVY_SHARE = 8


def ensure_synthetic_release(folder: Path, settings: SyntheticSettings) -> bool:
    """Write ``ratings.csv`` and ``movies.csv`` into ``folder`` unless already current.

    The settings are saved beside the CSVs (written last, so an interrupted run is
    regenerated) and compared on the next call, so reruns are cheap and identical.

    Returns:
        True if the files were (re)generated, False if they were already current.
    """
    settings_path = folder / SETTINGS_FILE
    wanted = {"generator_version": GENERATOR_VERSION, **settings.model_dump()}
    files_present = all(
        (folder / name).is_file() for name in ("ratings.csv", "movies.csv")
    )
    if files_present and settings_path.is_file():
        if json.loads(settings_path.read_text()) == wanted:
            logger.info("Synthetic release in %s is current; reusing it", folder)
            return False
    logger.info(
        "Generating a synthetic release (%d ratings, %d users, %d movies) in %s",
        settings.n_ratings,
        settings.n_users,
        settings.n_movies,
        folder,
    )
    folder.mkdir(parents=True, exist_ok=True)
    settings_path.unlink(missing_ok=True)
    _write_atomically(
        generate_rating_blocks(settings), folder / "ratings.csv", float_precision=1
    )
    _write_atomically([generate_movies(settings)], folder / "movies.csv")
    settings_path.write_text(json.dumps(wanted, indent=2) + "\n")
    return True


def generate_rating_blocks(settings: SyntheticSettings) -> Iterator[pl.DataFrame]:
    """Exactly ``n_ratings`` ratings of distinct (user, movie) pairs, one block of
    consecutive users at a time.

    Every user rates at least once when ``n_ratings >= n_users`` and at most half the
    movies (rounded up). Blocks are reproducible from the seed alone.

    Yields:
        userId (Int32, from 1), movieId (Int32, from 1), rating (Float32, multiples
        of ``rating_step`` from ``rating_step`` to 5) and timestamp (Int64, seconds),
        sorted by userId and movieId across blocks.
    """
    latent = LatentStructure.draw(settings)
    blocks = _user_blocks(latent.user_counts, _CHUNK_ROWS)

    def block(index: int) -> pl.DataFrame:
        rng = np.random.default_rng([settings.seed, 2, index])
        return _rating_block(rng, settings, latent, blocks[index])

    # Each block has its own seed, so blocks are drawn two at a time (numpy releases
    # the GIL in its heavy calls) and come out in order, the same as one at a time.
    with ThreadPoolExecutor(max_workers=_GENERATION_THREADS) as pool:
        pending: deque[Future[pl.DataFrame]] = deque()
        for index in range(len(blocks)):
            pending.append(pool.submit(block, index))
            if len(pending) > _GENERATION_THREADS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass(frozen=True)
class LatentStructure:
    """What every block of users shares: how many ratings each user gives, how
    popular each movie is, the rating model's biases and factors, and when each user
    starts rating."""

    user_counts: np.ndarray
    movie_weights: np.ndarray
    user_bias: np.ndarray
    movie_bias: np.ndarray
    user_factors: np.ndarray
    movie_factors: np.ndarray
    user_start: np.ndarray

    @classmethod
    def draw(cls, settings: SyntheticSettings) -> LatentStructure:
        rng = np.random.default_rng(settings.seed)
        n_users, n_movies = settings.n_users, settings.n_movies
        user_weights = _zipf_weights(
            rng, n_users, settings.user_activity_exponent, settings.user_activity_offset
        )
        movie_weights = _zipf_weights(
            rng,
            n_movies,
            settings.movie_popularity_exponent,
            settings.movie_popularity_offset,
        )
        # Factor entries with std s give a dot product with std s**2 * sqrt(rank).
        factor_std = np.sqrt(settings.interaction_std / np.sqrt(settings.rank))
        span = settings.last_timestamp - settings.first_timestamp
        return cls(
            user_counts=_user_counts(
                rng, settings.n_ratings, user_weights, math.ceil(n_movies / 2)
            ),
            movie_weights=movie_weights,
            user_bias=rng.normal(0.0, settings.user_bias_std, n_users),
            movie_bias=rng.normal(0.0, settings.movie_bias_std, n_movies),
            user_factors=rng.normal(0.0, factor_std, (n_users, settings.rank)),
            movie_factors=rng.normal(0.0, factor_std, (n_movies, settings.rank)),
            # Each user is active during a window starting at a random time.
            user_start=settings.first_timestamp + rng.integers(0, span + 1, n_users),
        )


def _user_counts(
    rng: np.random.Generator, n_ratings: int, weights: np.ndarray, cap: int
) -> np.ndarray:
    """Ratings per user summing to ``n_ratings``: one each (when there are enough),
    the rest multinomial in ``weights``, none above ``cap`` (the excess is drawn again
    among the users below it)."""
    counts = np.full(weights.size, int(n_ratings >= weights.size), dtype=np.int64)
    remaining = n_ratings - int(counts.sum())
    while remaining:
        open_weights = np.where(counts < cap, weights, 0.0)
        counts += rng.multinomial(remaining, open_weights / open_weights.sum())
        excess = np.maximum(counts - cap, 0)
        counts -= excess
        remaining = int(excess.sum())
    return counts


def _user_blocks(counts: np.ndarray, rows: int) -> list[slice]:
    """Consecutive ranges of users holding about ``rows`` ratings each."""
    ends = np.searchsorted(np.cumsum(counts), np.arange(rows, counts.sum(), rows))
    bounds = np.unique(np.concatenate([[0], ends + 1, [counts.size]]).clip(0, None))
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _rating_block(
    rng: np.random.Generator,
    settings: SyntheticSettings,
    latent: LatentStructure,
    users: slice,
) -> pl.DataFrame:
    """The ratings of ``users`` (a range of user indices), sorted by user and movie."""
    local, movies = _distinct_movies(
        rng, latent.user_counts[users], latent.movie_weights
    )
    user = local + users.start
    interaction = np.einsum(
        "ij,ij->i", latent.user_factors[user], latent.movie_factors[movies]
    )
    score = (
        settings.global_mean
        + latent.user_bias[user]
        + latent.movie_bias[movies]
        + interaction
        + rng.normal(0.0, settings.noise_std, user.size)
    )
    step = settings.rating_step
    ratings = np.clip(np.round(score / step) * step, step, RATING_MAX)
    delay = rng.exponential(60 * 86_400, user.size).astype(np.int64)
    timestamps = np.minimum(latent.user_start[user] + delay, settings.last_timestamp)
    return pl.DataFrame(
        {
            "userId": (user + 1).astype(np.int32),
            "movieId": (movies + 1).astype(np.int32),
            "rating": ratings.astype(np.float32),
            "timestamp": timestamps,
        },
        schema=RATINGS_SCHEMA,
    )


def _distinct_movies(
    rng: np.random.Generator, counts: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``counts[u]`` distinct movies per user ``u`` of a block, each drawn with
    probability proportional to ``weights`` among the movies the user has not drawn
    yet (successive sampling without replacement).

    Rounds draw with replacement and keep each user's first distinct draws. Users who
    rate a large share of the movies, and the few still short after
    ``_REJECTION_ROUNDS``, draw by exponential keys instead: the same distribution.

    Returns:
        (user index within the block, movie index), sorted by user and movie.
    """
    n_movies = weights.size
    cdf = np.cumsum(weights)
    heavy = counts * _HEAVY_SHARE > n_movies
    keys = np.empty(0, dtype=np.int64)  # user * n_movies + movie
    missing = np.where(heavy, 0, counts)
    for _ in range(_REJECTION_ROUNDS):
        if not missing.any():
            break
        # The users still short: their kept keys first, then their new draws.
        held = (missing > 0)[keys // n_movies]
        users = np.repeat(
            np.arange(counts.size), np.ceil(missing * _OVERSAMPLING).astype(np.int64)
        )
        movies = np.searchsorted(cdf, rng.random(users.size) * cdf[-1], side="right")
        drawn = users * n_movies + np.minimum(movies, n_movies - 1)
        candidates = np.concatenate([keys[held], drawn])
        keys = np.concatenate(
            [keys[~held], _first_distinct(candidates, counts, n_movies)]
        )
        missing = counts - np.bincount(keys // n_movies, minlength=counts.size)
    keys.sort()
    missing = counts - np.bincount(keys // n_movies, minlength=counts.size)
    keys = np.sort(
        np.concatenate([keys, _exponential_draws(rng, missing, keys, weights)])
    )
    return keys // n_movies, keys % n_movies


def _first_distinct(keys: np.ndarray, counts: np.ndarray, n_movies: int) -> np.ndarray:
    """Each user's first ``counts[u]`` distinct ``keys`` in the order given."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.ones(keys.size, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    is_first = np.zeros(keys.size, dtype=bool)
    is_first[order[first]] = True
    distinct = keys[is_first]
    # Stable: each user's keys stay in the order given (already grouped: no work).
    grouped = distinct[np.argsort(distinct // n_movies, kind="stable")]
    users = grouped // n_movies
    starts = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=counts.size))])
    rank = np.arange(grouped.size) - starts[users]
    return grouped[rank < counts[users]]


def _exponential_draws(
    rng: np.random.Generator,
    missing: np.ndarray,
    sorted_keys: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """``missing[u]`` more movies per user, none among the user's ``sorted_keys``:
    the smallest ``Exp(1) / weight`` (Efraimidis-Spirakis), one user at a time."""
    n_movies = weights.size
    draws = [np.empty(0, dtype=np.int64)]
    for user in np.flatnonzero(missing):
        priority = rng.exponential(size=n_movies) / weights
        low, high = np.searchsorted(
            sorted_keys, [user * n_movies, (user + 1) * n_movies]
        )
        priority[sorted_keys[low:high] % n_movies] = np.inf
        chosen = np.argpartition(priority, missing[user] - 1)[: missing[user]]
        draws.append(user * n_movies + chosen)
    return np.concatenate(draws)


def generate_movies(settings: SyntheticSettings) -> pl.DataFrame:
    """Generate ``movies.csv`` rows: a title with a year and one to a few genres."""
    rng = np.random.default_rng([settings.seed, 1])
    years = rng.integers(1930, 2019, settings.n_movies)
    # About 1.5 genres per movie on top of one guaranteed genre, as in ml-latest.
    genre_flags = rng.random((settings.n_movies, len(MOVIELENS_GENRES))) < 0.08
    genre_flags[
        np.arange(settings.n_movies),
        rng.integers(0, len(MOVIELENS_GENRES), settings.n_movies),
    ] = True
    movies = pl.DataFrame(genre_flags, schema=list(MOVIELENS_GENRES)).with_columns(
        movieId=pl.int_range(1, settings.n_movies + 1, dtype=pl.Int32),
        year=pl.Series(years),
    )
    return movies.select(
        "movieId",
        pl.format("Synthetic Movie {} ({})", "movieId", "year").alias("title"),
        pl.concat_str(
            [pl.when(pl.col(genre)).then(pl.lit(genre)) for genre in MOVIELENS_GENRES],
            separator="|",
            ignore_nulls=True,
        ).alias("genres"),
    )


def _zipf_weights(
    rng: np.random.Generator, size: int, exponent: float, offset: float
) -> np.ndarray:
    """Probabilities proportional to ``(rank + offset) ** -exponent``, ranks shuffled.

    Shuffling keeps popularity unrelated to id order, as in real releases.
    """
    weights = (np.arange(1, size + 1) + offset) ** -exponent
    return rng.permutation(weights / weights.sum())


def _write_atomically(
    frames: Iterable[pl.DataFrame], path: Path, **write_options: Any
) -> None:
    """Append ``frames`` to a CSV (one header) next to ``path`` and rename it, so no
    half-written file remains under the final name, nor a partial one after an error."""
    partial = path.with_name(f".{path.name}.part")
    try:
        with partial.open("wb") as handle:
            for index, frame in enumerate(frames):
                frame.write_csv(handle, include_header=index == 0, **write_options)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
