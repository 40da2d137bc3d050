"""Movies like a given one, over the movies seen in training: by the served ranker when
there is one (its ``similar_scores``: EASE^R's weight row), else by the kernel's cosine
similarity of the rating model's learned movie factors. Each row names the variant that
answered (``variant``)."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from rating_prediction.models.scoring import similar_movie_indices, top_k_indices

from .bundle import ServedModel

SIMILAR_MOVIES_SCHEMA = pl.Schema(
    {
        "movieId": pl.Int64,
        "rank": pl.Int32,
        "similarMovieId": pl.Int64,
        "title": pl.String,
        "similarity": pl.Float64,
        "variant": pl.String,
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
    (itself excluded), best first, equal similarities to the lower movie index;
    unknown movies get no rows (none known: an empty table), nor does a movie the
    ranker has no weights for."""
    known_index = np.flatnonzero(served.movies.seen)
    movie_ids = served.movies.as_ids(movie_ids)
    queries = served.movies.lookup(movie_ids)
    asked = movie_ids[queries >= 0]
    if asked.size == 0 or known_index.size < 2:
        return pl.DataFrame(schema=similar_movies_schema(served))
    if served.ranker is not None:
        best, similarity = _ranker_similar(served, queries[queries >= 0], top_k)
    else:
        best, similarity = similar_movie_indices(
            served.model,
            known_index,
            np.searchsorted(known_index, queries[queries >= 0]),
            top_k,
        )
    return _similar_table(served, asked, known_index[best], similarity)


def _ranker_similar(
    served: ServedModel, queries: np.ndarray, top_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the known movies of each query's ``top_k`` by the ranker's
    ``similar_scores`` (movies unseen in training masked), and their scores
    (``-inf``: no candidate)."""
    model = served.ranker.model
    scores = torch.stack([model.similar_scores(int(movie)) for movie in queries])
    known = torch.from_numpy(np.flatnonzero(served.movies.seen))
    scores = scores.index_select(1, known)
    best = top_k_indices(scores, min(top_k, scores.shape[1]))
    return best.numpy(), scores.gather(1, best).double().numpy()


def _similar_table(
    served: ServedModel, asked: np.ndarray, similar: np.ndarray, similarity: np.ndarray
) -> pl.DataFrame:
    """The rows of each asked movie's similar movies (mapped ``similar``, best first),
    those with a finite similarity."""
    k = similar.shape[1]
    valid = np.isfinite(similarity).ravel()
    similar = similar.ravel()[valid]
    title_position = np.cumsum(served.movies.seen) - 1
    return pl.DataFrame(
        {
            "movieId": np.repeat(asked, k)[valid],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), asked.size)[valid],
            "similarMovieId": served.movies.ids[similar],
            "title": served.movie_titles.gather(title_position[similar]),
            "similarity": similarity.ravel()[valid],
            "variant": np.full(int(valid.sum()), served.answered_by["similar"]),
        },
        schema=similar_movies_schema(served),
    )
