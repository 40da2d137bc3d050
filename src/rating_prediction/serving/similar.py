"""Movies like a given one: cosine similarity of the learned movie factors."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from rating_prediction.models.scoring import movie_factor_table

from .model import ServedModel

SIMILAR_MOVIES_SCHEMA = pl.Schema(
    {
        "movieId": pl.Int64,
        "rank": pl.Int32,
        "similarMovieId": pl.Int64,
        "title": pl.String,
        "similarity": pl.Float64,
    }
)


def similar_movies(
    served: ServedModel, movie_ids: list[int], top_k: int
) -> pl.DataFrame:
    """The ``top_k`` known movies most similar to each known movie of ``movie_ids``
    (itself excluded), best first; unknown movies get no rows (and a clear error when
    none is known is not raised: an empty table)."""
    known_index = np.flatnonzero(served.movies.seen)
    factors = torch.nn.functional.normalize(
        movie_factor_table(served.model)[torch.from_numpy(known_index)], dim=1
    )
    titles = served.movie_titles.to_numpy()
    queries = served.movies.lookup(np.asarray(movie_ids, dtype=np.int64))
    frames = []
    for movie_id, index in zip(movie_ids, queries, strict=True):
        if index < 0:
            continue
        position = int(np.searchsorted(known_index, index))
        similarity = factors @ factors[position]
        similarity[position] = -np.inf
        k = min(top_k, len(known_index) - 1)
        best = torch.topk(similarity, k)
        frames.append(
            pl.DataFrame(
                {
                    "movieId": [movie_id] * k,
                    "rank": np.arange(1, k + 1),
                    "similarMovieId": served.movies.ids[known_index[best.indices]],
                    "title": titles[best.indices.numpy()],
                    "similarity": best.values.double().numpy(),
                },
                schema=SIMILAR_MOVIES_SCHEMA,
            )
        )
    return pl.concat(frames) if frames else pl.DataFrame(schema=SIMILAR_MOVIES_SCHEMA)
