"""Movies like a given one: the kernel's cosine similarity of the learned movie
factors, over the movies seen in training."""

from __future__ import annotations

import numpy as np
import polars as pl

from rating_prediction.models.scoring import similar_movie_indices

from .bundle import ServedModel

SIMILAR_MOVIES_SCHEMA = pl.Schema(
    {
        "movieId": pl.Int64,
        "rank": pl.Int32,
        "similarMovieId": pl.Int64,
        "title": pl.String,
        "similarity": pl.Float64,
    }
)


def similar_movies_schema(served: ServedModel) -> pl.Schema:
    """``SIMILAR_MOVIES_SCHEMA`` with the ids in the served model's movie id type."""
    dtype = served.movies.dtype
    return pl.Schema(
        {**SIMILAR_MOVIES_SCHEMA, "movieId": dtype, "similarMovieId": dtype}
    )


def similar_movies(
    served: ServedModel, movie_ids: list[int] | list[str], top_k: int
) -> pl.DataFrame:
    """The ``top_k`` known movies most similar to each known movie of ``movie_ids``
    (itself excluded), best first; unknown movies get no rows (none known: an empty
    table)."""
    known_index = np.flatnonzero(served.movies.seen)
    movie_ids = served.movies.as_ids(movie_ids)
    queries = served.movies.lookup(movie_ids)
    asked = movie_ids[queries >= 0]
    if asked.size == 0 or known_index.size < 2:
        return pl.DataFrame(schema=similar_movies_schema(served))
    best, similarity = similar_movie_indices(
        served.model,
        known_index,
        np.searchsorted(known_index, queries[queries >= 0]),
        top_k,
    )
    k = best.shape[1]
    return pl.DataFrame(
        {
            "movieId": np.repeat(asked, k),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), asked.size),
            "similarMovieId": served.movies.ids[known_index[best.ravel()]],
            "title": served.movie_titles.gather(best.ravel()),
            "similarity": similarity.ravel(),
        },
        schema=similar_movies_schema(served),
    )
