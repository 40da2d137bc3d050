"""``ingestion``: which release to read, where, how to fetch it, and the synthetic sample."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    NonNegativeFloat,
    PositiveFloat,
    model_validator,
)

from rating_prediction.parameters.base import (
    NonNegativeInt,
    Parameters,
    PositiveInt,
)


class SyntheticSettings(Parameters):
    """``ingestion.synthetic``: the generator of the offline sample (see its YAML)."""

    seed: NonNegativeInt = 42
    n_users: PositiveInt = 3_000
    n_movies: PositiveInt = 1_000
    n_ratings: PositiveInt = 200_000
    rank: PositiveInt = 5
    global_mean: float = 3.65
    user_bias_std: NonNegativeFloat = 0.4
    movie_bias_std: NonNegativeFloat = 0.45
    interaction_std: NonNegativeFloat = 0.5
    noise_std: NonNegativeFloat = 0.5
    # 0.5: half stars from 0.5 (MovieLens); 1.0: whole stars from 1 (Netflix Prize).
    rating_step: Literal[0.5, 1.0] = 0.5
    user_activity_exponent: NonNegativeFloat = 0.7
    user_activity_offset: PositiveFloat = 20.0
    movie_popularity_exponent: NonNegativeFloat = 1.0
    movie_popularity_offset: PositiveFloat = 10.0
    first_timestamp: NonNegativeInt = 946_684_800  # 2000-01-01
    last_timestamp: NonNegativeInt = 1_537_747_200  # 2018-09-24

    @model_validator(mode="after")
    def _feasible(self) -> SyntheticSettings:
        if self.n_ratings > self.n_users * self.n_movies // 2:
            raise ValueError(
                f"n_ratings={self.n_ratings} needs to be at most half of "
                f"n_users * n_movies = {self.n_users * self.n_movies}"
            )
        if self.first_timestamp > self.last_timestamp:
            raise ValueError("first_timestamp must not be after last_timestamp")
        return self


class IngestionParameters(Parameters):
    """``ingestion``: which release to read, where, and how to fetch it."""

    dataset: str
    raw_dir: str
    base_url: str
    download_timeout_s: PositiveFloat
    synthetic: SyntheticSettings = SyntheticSettings()
