"""``SampledFactorization`` models in the exported format, built from random tensors
(no myFM), and a plain numpy evaluation of the format's formula to hold them against."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.special import ndtr

N_SAMPLES, RANK = 4, 3
DAY = 86_400
# Ten 30-day buckets from 2015-01-01; a request without a timestamp takes the last.
TIME = {
    "origin": 1_420_070_400,
    "width": 30 * DAY,
    "n_buckets": 10,
    "default_bucket": 9,
}
WHOLE_STARS = [1.0, 2.0, 3.0, 4.0, 5.0]
HALF_STARS = [0.5 * step for step in range(1, 11)]


def sampled_config(
    n_users: int,
    n_movies: int,
    *,
    levels: list[float] | None = None,
    time: dict[str, Any] | None = None,
    variant: str = "bayesian_fm",
) -> dict[str, Any]:
    """A bayesian_fm config.json naming ``SampledFactorization``, on the half-star
    scale."""
    return {
        "variant": variant,
        "model_class": "SampledFactorization",
        "n_users": n_users,
        "n_movies": n_movies,
        "model_kwargs": {
            "n_samples": N_SAMPLES,
            "rank": RANK,
            "rating_min": 0.5,
            "rating_max": 5.0,
            "levels": levels,
            "time": time,
        },
        "best_val_loss": 0.7,
    }


def random_weights(config: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    """Float32 tensors of the format's names and shapes: scores around 3.5 stars on
    the regression scale, around 0 on ordered probit's, whose cutpoints are sorted
    draws per sample."""
    generator = torch.Generator().manual_seed(seed)
    kwargs = config["model_kwargs"]
    width = kwargs["n_samples"] * kwargs["rank"]
    probit = kwargs["levels"] is not None

    def normal(*shape: int, std: float = 0.5) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * std

    weights = {
        "user_factors.weight": normal(config["n_users"], width),
        "movie_factors.weight": normal(config["n_movies"], width),
        "user_bias.weight": normal(config["n_users"], kwargs["n_samples"]),
        "movie_bias.weight": normal(config["n_movies"], kwargs["n_samples"]),
        "intercepts": normal(kwargs["n_samples"], std=0.1) + (0.0 if probit else 3.5),
    }
    if kwargs["time"] is not None:
        buckets = kwargs["time"]["n_buckets"]
        weights["time_factors.weight"] = normal(buckets, width)
        weights["time_bias.weight"] = normal(buckets, kwargs["n_samples"])
    if probit:
        cuts = normal(kwargs["n_samples"], len(kwargs["levels"]) - 1, std=1.5)
        weights["cutpoints"] = cuts.sort(dim=1).values
    return weights


def reference_predictions(
    config: dict[str, Any],
    weights: dict[str, torch.Tensor],
    users: np.ndarray,
    movies: np.ndarray,
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """The format's formula, pair by pair and sample by sample, in float64."""
    kwargs = config["model_kwargs"]
    tables = {name: tensor.double().numpy() for name, tensor in weights.items()}
    predictions = []
    for row, (user, movie) in enumerate(zip(users, movies, strict=True)):
        seconds = None if timestamps is None else timestamps[row]
        bucket = _bucket(kwargs["time"], seconds)
        expected = [
            _expected(
                kwargs,
                tables,
                sample,
                _score(kwargs, tables, sample, (user, movie, bucket)),
            )
            for sample in range(kwargs["n_samples"])
        ]
        predictions.append(np.mean(expected))
    return np.clip(predictions, kwargs["rating_min"], kwargs["rating_max"])


def _bucket(time: dict[str, Any] | None, seconds: float | None) -> int | None:
    if time is None:
        return None
    if seconds is None or np.isnan(seconds):
        return time["default_bucket"]
    bucket = int(np.floor((seconds - time["origin"]) / time["width"]))
    return min(max(bucket, 0), time["n_buckets"] - 1)


def _row(tables: dict, name: str, index: int, columns: slice) -> np.ndarray:
    table = tables[name]
    if index < 0:
        return np.zeros(table[0, columns].shape)
    return table[index, columns]


def _score(kwargs: dict, tables: dict, sample: int, triple: tuple) -> float:
    user, movie, bucket = triple
    rank = kwargs["rank"]
    block = slice(sample * rank, (sample + 1) * rank)
    user_factors = _row(tables, "user_factors.weight", user, block)
    movie_factors = _row(tables, "movie_factors.weight", movie, block)
    score = (
        tables["intercepts"][sample]
        + _row(tables, "user_bias.weight", user, slice(sample, sample + 1))[0]
        + _row(tables, "movie_bias.weight", movie, slice(sample, sample + 1))[0]
        + user_factors @ movie_factors
    )
    if bucket is not None:
        time_factors = tables["time_factors.weight"][bucket, block]
        score += tables["time_bias.weight"][bucket, sample]
        score += time_factors @ user_factors + time_factors @ movie_factors
    return score


def _expected(kwargs: dict, tables: dict, sample: int, score: float) -> float:
    levels = kwargs["levels"]
    if levels is None:
        return score
    at_most = np.append(ndtr(tables["cutpoints"][sample] - score), 1.0)
    probabilities = np.diff(at_most, prepend=0.0)
    return float(np.dot(levels, probabilities))
