import numpy as np
import polars as pl
import pytest

from tests.fakes import ratings_frame


@pytest.fixture
def synthetic_ratings() -> pl.DataFrame:
    """About 2,400 ratings: 60 users (sparse, non-contiguous ids) x a random subset of
    120 movies, with a few very popular movies."""
    rng = np.random.default_rng(0)
    user_ids = np.arange(60) * 7 + 3
    movie_ids = np.arange(120) * 5 + 1
    # Zipf-like popularity, so the top-50 filter has an effect.
    popularity = 1 / np.arange(1, 121)
    rows = []
    for user in user_ids:
        movies = rng.choice(
            movie_ids, size=40, replace=False, p=popularity / popularity.sum()
        )
        for movie in movies:
            rows.append(
                (user, movie, rng.integers(1, 11) / 2, rng.integers(10**9, 2 * 10**9))
            )
    return ratings_frame(rows)
