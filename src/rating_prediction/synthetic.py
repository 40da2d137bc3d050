"""A synthetic MovieLens-format release that models can learn like real data.

Each rating is ``global_mean + user bias + movie bias + <user factors, movie factors> +
noise``, rounded to half stars and clipped to 0.5..5. Who rates what follows long-tailed
(Zipf-like) user activity and movie popularity. Everything is vectorised numpy/polars
and chunked, so an ML-25M-sized release (25 million ratings) takes a couple of minutes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rating_prediction.parameters import SyntheticSettings
from rating_prediction.schema import MOVIELENS_GENRES, RATING_MAX, RATING_MIN

logger = logging.getLogger(__name__)

# Bump when the generator's algorithm changes so existing samples are regenerated.
GENERATOR_VERSION = 1
SETTINGS_FILE = "generator.json"

_CHUNK_ROWS = 2_000_000


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
        generate_ratings(settings), folder / "ratings.csv", float_precision=1
    )
    _write_atomically(generate_movies(settings), folder / "movies.csv")
    settings_path.write_text(json.dumps(wanted, indent=2) + "\n")
    return True


def generate_ratings(settings: SyntheticSettings) -> pl.DataFrame:
    """Generate exactly ``n_ratings`` ratings for distinct (user, movie) pairs.

    Returns:
        userId (Int32, from 1), movieId (Int32, from 1), rating (Float32, half stars
        in 0.5..5) and timestamp (Int64, seconds), sorted by userId and movieId.
    """
    rng = np.random.default_rng(settings.seed)
    users, movies = _sample_pairs(rng, settings)

    user_bias = rng.normal(0.0, settings.user_bias_std, settings.n_users)
    movie_bias = rng.normal(0.0, settings.movie_bias_std, settings.n_movies)
    # Factor entries with std s give a dot product with std s**2 * sqrt(rank).
    factor_std = np.sqrt(settings.interaction_std / np.sqrt(settings.rank))
    user_factors = rng.normal(0.0, factor_std, (settings.n_users, settings.rank))
    movie_factors = rng.normal(0.0, factor_std, (settings.n_movies, settings.rank))
    ratings = np.empty(settings.n_ratings, dtype=np.float32)
    # Chunks bound the memory of the (rows x rank) gathered factor matrices.
    for start in range(0, settings.n_ratings, _CHUNK_ROWS):
        chunk = slice(start, start + _CHUNK_ROWS)
        user, movie = users[chunk], movies[chunk]
        interaction = np.einsum("ij,ij->i", user_factors[user], movie_factors[movie])
        noise = rng.normal(0.0, settings.noise_std, user.size)
        score = (
            settings.global_mean
            + user_bias[user]
            + movie_bias[movie]
            + interaction
            + noise
        )
        ratings[chunk] = np.clip(np.round(score * 2.0) / 2.0, RATING_MIN, RATING_MAX)

    # Each user is active during a window starting at a random time, like real users.
    span = settings.last_timestamp - settings.first_timestamp
    user_start = settings.first_timestamp + rng.integers(0, span, settings.n_users)
    delay = rng.exponential(60 * 86_400, settings.n_ratings).astype(np.int64)
    timestamps = np.minimum(user_start[users] + delay, settings.last_timestamp)

    return pl.DataFrame(
        {
            "userId": (users + 1).astype(np.int32),
            "movieId": (movies + 1).astype(np.int32),
            "rating": ratings,
            "timestamp": timestamps.astype(np.int64),
        }
    ).sort("userId", "movieId")


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


def _sample_pairs(
    rng: np.random.Generator, settings: SyntheticSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_ratings`` distinct (user, movie) index pairs from long-tailed weights.

    Pairs are oversampled independently from user-activity and movie-popularity
    weights, duplicates are dropped keeping first draws, and the first ``n_ratings``
    distinct pairs in draw order are kept (so the result is not biased by pair value).
    """
    user_weights = _zipf_weights(
        rng,
        settings.n_users,
        settings.user_activity_exponent,
        settings.user_activity_offset,
    )
    movie_weights = _zipf_weights(
        rng,
        settings.n_movies,
        settings.movie_popularity_exponent,
        settings.movie_popularity_offset,
    )
    keys = np.empty(0, dtype=np.int64)
    # Popular pairs collide, more so as pairs fill up: each round draws enough for
    # the share of new pairs the previous round yielded, plus a margin.
    new_pair_share = 1.0
    while keys.size < settings.n_ratings:
        draws = int((settings.n_ratings - keys.size) * 1.3 / new_pair_share) + 1_000
        users = rng.choice(settings.n_users, size=draws, p=user_weights)
        movies = rng.choice(settings.n_movies, size=draws, p=movie_weights)
        drawn = np.concatenate(
            [keys, users.astype(np.int64) * settings.n_movies + movies]
        )
        _, first_positions = np.unique(drawn, return_index=True)
        new_pair_share = max((first_positions.size - keys.size) / draws, 1e-3)
        keys = drawn[np.sort(first_positions)]
    keys = keys[: settings.n_ratings]
    return keys // settings.n_movies, keys % settings.n_movies


def _zipf_weights(
    rng: np.random.Generator, size: int, exponent: float, offset: float
) -> np.ndarray:
    """Probabilities proportional to ``(rank + offset) ** -exponent``, ranks shuffled.

    Shuffling keeps popularity unrelated to id order, as in real releases.
    """
    weights = (np.arange(1, size + 1) + offset) ** -exponent
    return rng.permutation(weights / weights.sum())


def _write_atomically(frame: pl.DataFrame, path: Path, **write_options: Any) -> None:
    """Write a CSV next to ``path`` and rename it, so no half-written file remains."""
    partial = path.with_name(f".{path.name}.part")
    frame.write_csv(partial, **write_options)
    os.replace(partial, path)
