"""bayesian_fm's kept samples served (``SampledFactorization``, ordered probit and time):
predictions at a request's timestamps or the default bucket, bad timestamps refused,
recommendations, similar movies and fold-in, its folder round trip and its structure
checked at load. Built from random tensors in the exported format (no myFM)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import safetensors.numpy
import torch

from rating_prediction.data.schema import (
    MAPPED_RATINGS_SCHEMA,
    MOVIES_SCHEMA,
)
from rating_prediction.models.config import load_trained_model
from rating_prediction.serving.artifacts import load_served_model, save_served_model
from rating_prediction.serving.bundle import ServedModel, assemble_served_model
from rating_prediction.serving.recommend import recommend_users
from rating_prediction.serving.requests import answer_request
from rating_prediction.serving.similar import similar_movies
from tests.models.sampled_fixtures import (
    HALF_STARS,
    TIME,
    random_weights,
    sampled_config,
)
from tests.serving.fixtures import assert_damage_refused_at_load, identity_mappings

KINDS = {
    "regression with time": {"time": TIME},
    "ordered probit with time": {"levels": HALF_STARS, "time": TIME},
}
IN_THE_FIRST_BUCKET = TIME["origin"] + 3_600


def forgetting_unseen(config: dict, weights: dict) -> dict[str, torch.Tensor]:
    """``weights`` with user 40 and movie 5 (unseen in the fixtures' training) zeroed,
    as training leaves them."""
    model = load_trained_model(config, weights)
    model.forget_unseen(
        torch.tensor([True, True, True, False]),
        torch.tensor([True, True, True, True, False]),
    )
    return model.state_dict()


@pytest.fixture(scope="module", params=list(KINDS))
def sampled_parts(request, served_inputs) -> tuple[dict, dict, ServedModel]:
    config = sampled_config(4, 5, **KINDS[request.param])
    weights = forgetting_unseen(config, random_weights(config, seed=2))
    return config, weights, assemble_served_model(config, weights, **served_inputs)


def pair_request(timestamps: list | None = None) -> pd.DataFrame:
    request = pd.DataFrame({"userId": [10, 20, 30, 999], "movieId": [1, 2, 4, 1]})
    if timestamps is not None:
        request["timestamp"] = pd.Series(timestamps, dtype=object)
    return request


def own_predictions(served: ServedModel, timestamps: list | None) -> np.ndarray:
    """The model's predictions of ``pair_request``'s pairs (mapped by hand)."""
    seconds = None
    if timestamps is not None:
        seconds = torch.tensor(
            [np.nan if t is None else t for t in timestamps], dtype=torch.float64
        )
    return served.model.predict(
        torch.tensor([0, 1, 2, -1]), torch.tensor([0, 1, 3, 0]), seconds
    ).numpy()


def test_a_request_is_predicted_at_its_timestamps_or_the_default(sampled_parts):
    _, _, served = sampled_parts
    times = [IN_THE_FIRST_BUCKET, None, TIME["origin"] + 4 * TIME["width"], 10**9]
    answer = answer_request(served, pair_request(times))
    np.testing.assert_allclose(answer["prediction"], own_predictions(served, times))
    assert answer["known_user"].tolist() == [True, True, True, False]
    default = answer_request(served, pair_request())
    np.testing.assert_allclose(default["prediction"], own_predictions(served, None))
    assert default["prediction"][1] == answer["prediction"][1]
    assert default["prediction"][0] != answer["prediction"][0]
    # An integer column, or a float one with NaN for null, reads as the same seconds.
    integers = pair_request()
    integers["timestamp"] = [IN_THE_FIRST_BUCKET] * 4
    np.testing.assert_allclose(
        answer_request(served, integers)["prediction"],
        own_predictions(served, [IN_THE_FIRST_BUCKET] * 4),
    )
    floats = pair_request()
    floats["timestamp"] = [float(t) if t is not None else np.nan for t in times]
    np.testing.assert_allclose(
        answer_request(served, floats)["prediction"], answer["prediction"]
    )


BAD_TIMESTAMPS = [
    (-1, r"got \[-1\]"),
    (2**40, r"got \[1099511627776\]"),
    (2**70, r"got \[1180591620717411303424\]"),
    (1.5e9 + 0.5, r"got \[1500000000.5\]"),
    (float("inf"), r"got \[inf\]"),
    (True, r"got \[True\]"),
    ("2020-01-01", r"got \['2020-01-01'\]"),
]


@pytest.mark.parametrize(("value", "quoted"), BAD_TIMESTAMPS)
def test_a_bad_timestamp_is_refused_naming_the_column(sampled_parts, value, quoted):
    _, _, served = sampled_parts
    request = pair_request([IN_THE_FIRST_BUCKET, value, None, 7])
    with pytest.raises(
        ValueError,
        match=r"Column 'timestamp' must hold the rating's time as integer unix "
        rf"seconds in 0\.\.4102444800, or null for the model's default; {quoted}",
    ):
        answer_request(served, request)


def test_a_refusal_quotes_a_few_values_never_the_request(sampled_parts):
    _, _, served = sampled_parts
    request = pd.DataFrame(
        {"userId": 10, "movieId": 1, "timestamp": ["x" * 10_000] * 1_000}
    )
    with pytest.raises(ValueError) as refused:
        answer_request(served, request)
    assert len(str(refused.value)) < 400
    booleans = pair_request()
    booleans["timestamp"] = [True, False, True, False]
    with pytest.raises(ValueError, match=r"Column 'timestamp' must hold"):
        answer_request(served, booleans)


def test_recommendations_rank_by_the_expected_rating_now(sampled_parts):
    _, _, served = sampled_parts
    answer = recommend_users(
        served, [10], pl.DataFrame({"userId": [10], "movieId": [1]}), 3
    )
    # User 10 rated movie 1; movie 5 is unseen in training: the candidates are 2-4.
    expected = own_predictions_of_user(served, 0, np.array([1, 2, 3]))
    order = np.argsort(-expected, kind="stable")
    assert answer["movieId"].to_list() == (np.array([2, 3, 4])[order]).tolist()
    # A whole catalogue's ordered probit scores take the probabilities in float32.
    np.testing.assert_allclose(answer["prediction"], expected[order], rtol=0, atol=1e-6)


def own_predictions_of_user(served: ServedModel, user: int, movies: np.ndarray):
    users = torch.full((len(movies),), user)
    return served.model.predict(users, torch.from_numpy(movies)).numpy()


def test_similar_movies_are_cosines_of_the_stacked_movie_factors(sampled_parts):
    config, weights, served = sampled_parts
    factors = weights["movie_factors.weight"].double().numpy()[:4]
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    cosines = unit[0] @ unit[1:].T
    answer = similar_movies(served, [1], 2)
    best = np.argsort(-cosines, kind="stable")[:2]
    assert answer["similarMovieId"].to_list() == (best + 2).tolist()
    np.testing.assert_allclose(answer["similarity"], cosines[best], rtol=1e-5)


def test_the_folder_round_trip_answers_alike(sampled_parts, tmp_path):
    _, _, served = sampled_parts
    save_served_model(served, tmp_path / "served_model")
    loaded = load_served_model(tmp_path / "served_model")
    times = [IN_THE_FIRST_BUCKET, None, None, 1]
    pd.testing.assert_frame_equal(
        answer_request(loaded, pair_request(times)),
        answer_request(served, pair_request(times)),
    )
    assert loaded.config.model_class == "SampledFactorization"


# Fold-in: a user held out of the fit, folded in from 80% of their ratings, is
# predicted better on the rest than by the unknown-user fallback.

N_USERS, N_MOVIES, HELD_OUT = 60, 120, 61


def generated(kind: str, seed: int = 0) -> tuple[dict, dict, pl.DataFrame]:
    """A sampled model whose samples are a truth plus a little noise, and the held-out
    user's ratings of every movie drawn from that truth (regression: half stars
    around the mean; ordered probit: the probit's own draws of its levels)."""
    generator = torch.Generator().manual_seed(seed)
    config = sampled_config(N_USERS, N_MOVIES, **KINDS[kind])
    weights = random_weights(config, seed)
    probit = config["model_kwargs"]["levels"] is not None
    scale = 1.0 if probit else 0.6
    truth = {
        "user": torch.randn(N_USERS + 1, 3, generator=generator) * scale,
        "movie": torch.randn(N_MOVIES, 3, generator=generator) * scale,
    }
    for name, table in (
        ("user_factors.weight", "user"),
        ("movie_factors.weight", "movie"),
    ):
        rows = truth[table][: len(weights[name])].repeat(1, 4)
        weights[name] = rows + 0.05 * torch.randn(rows.shape, generator=generator)
    for name in ("user_bias.weight", "movie_bias.weight", "time_bias.weight"):
        weights[name] = weights[name] * 0.1
    weights["time_factors.weight"] = weights["time_factors.weight"] * 0.1
    movie_bias = weights["movie_bias.weight"].mean(1).double()
    latent = (truth["user"][-1] @ truth["movie"].T).double() + movie_bias
    latent += weights["intercepts"].mean().double()
    if probit:
        weights["cutpoints"] = torch.linspace(-3, 3, 9).repeat(4, 1)
        noisy = latent + torch.randn(N_MOVIES, generator=generator, dtype=torch.float64)
        level = (weights["cutpoints"][0].double()[None, :] < noisy[:, None]).sum(1)
        ratings = torch.tensor(HALF_STARS, dtype=torch.float64)[level]
    else:
        noisy = latent + 0.2 * torch.randn(
            N_MOVIES, generator=generator, dtype=torch.float64
        )
        ratings = (noisy * 2).round().clamp(1, 10) / 2
    held_out = pl.DataFrame(
        {
            "userId": HELD_OUT,
            "movieId": np.arange(1, N_MOVIES + 1),
            "rating": ratings.numpy(),
        }
    ).sample(fraction=1.0, shuffle=True, seed=1)
    return config, weights, held_out


def served_on_every_pair(config: dict, weights: dict) -> ServedModel:
    """Every user and movie seen in training (each user rated two movies)."""
    users = np.repeat(np.arange(N_USERS), 2)
    movies = np.arange(2 * N_USERS) % N_MOVIES
    train = pl.DataFrame(
        {
            "userId": users + 1,
            "movieId": movies + 1,
            "rating": 4.0,
            "timestamp": 0,
            "userIdMapped": users,
            "movieIdMapped": movies,
        }
    ).cast(MAPPED_RATINGS_SCHEMA)
    return assemble_served_model(
        config,
        weights,
        **identity_mappings(N_USERS, N_MOVIES),
        train_ratings=train,
        movies=pl.DataFrame(
            {
                "movieId": range(1, N_MOVIES + 1),
                "title": [f"Movie {i}" for i in range(1, N_MOVIES + 1)],
                "genres": "Drama",
            },
            schema=MOVIES_SCHEMA,
        ),
    )


def rmse(predicted, actual) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2)))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_folded_in_user_beats_the_fallback(kind):
    config, weights, held_out = generated(kind)
    served = served_on_every_pair(config, weights)
    cut = int(0.8 * held_out.height)
    known, hidden = held_out[:cut], held_out[cut:]
    request = pd.concat(
        [known.to_pandas(), hidden.drop("rating").to_pandas().assign(rating=np.nan)],
        ignore_index=True,
    )
    folded = answer_request(served, request, {"regularization": 1.0})
    fallback = answer_request(served, hidden.drop("rating").to_pandas())
    assert folded["fallback"].isna().all()
    assert fallback["fallback"].notna().all()
    folded_rmse = rmse(folded["prediction"], hidden["rating"])
    fallback_rmse = rmse(fallback["prediction"], hidden["rating"])
    assert folded_rmse < 0.8 * fallback_rmse, (folded_rmse, fallback_rmse)
    # Recommendations for the folded-in user: scored by the same vectors, never a
    # movie of their own ratings.
    recommended = answer_request(
        served, known.to_pandas(), {"task": "recommend", "k": 5, "regularization": 1.0}
    )
    assert not set(recommended["movieId"]) & set(known["movieId"].to_list())
    on_hidden = answer_request(
        served,
        pd.concat(
            [
                known.to_pandas(),
                pd.DataFrame(
                    {
                        "userId": HELD_OUT,
                        "movieId": recommended["movieId"],
                        "rating": np.nan,
                    }
                ),
            ],
            ignore_index=True,
        ),
        {"regularization": 1.0},
    )
    np.testing.assert_allclose(recommended["prediction"], on_hidden["prediction"])
    assert recommended["prediction"].is_monotonic_decreasing


# Structure, checked at every load: each broken file refused, naming it.


def change_weights(change: Callable[[dict[str, np.ndarray]], None]):
    def damage(folder: Path) -> None:
        path = folder / "weights.safetensors"
        arrays = safetensors.numpy.load_file(path)
        change(arrays)
        safetensors.numpy.save_file(arrays, path)

    return damage


def change_kwargs(**changes):
    def damage(folder: Path) -> None:
        path = folder / "config.json"
        config = json.loads(path.read_text())
        config["model_kwargs"] |= changes
        path.write_text(json.dumps(config))

    return damage


def reversed_cutpoints(arrays):
    arrays["cutpoints"][1] = arrays["cutpoints"][1][::-1].copy()


STRUCTURE_CASES = {
    "descending cutpoints": (
        "weights.safetensors",
        change_weights(reversed_cutpoints),
        "has cutpoints that are not ascending in sample 1",
    ),
    "a NaN cutpoint": (
        "weights.safetensors",
        change_weights(lambda arrays: arrays["cutpoints"].__setitem__((0, 0), np.nan)),
        "holds NaN or infinite values in 'cutpoints'",
    ),
    "a missing time table": (
        "weights.safetensors",
        change_weights(lambda arrays: arrays.pop("time_bias.weight")),
        r"holds tensors of shapes .*, not the .*'time_bias.weight': \(10, 4\)",
    ),
    "a sample too few": (
        "weights.safetensors",
        change_weights(
            lambda arrays: arrays.update(intercepts=arrays["intercepts"][:3].copy())
        ),
        r"'intercepts': \(3,\)",
    ),
    "float64 factors": (
        "weights.safetensors",
        change_weights(
            lambda arrays: arrays.update(
                {
                    "user_factors.weight": arrays["user_factors.weight"].astype(
                        np.float64
                    )
                }
            )
        ),
        "holds tensors other than float32",
    ),
    "more buckets declared than the time tables hold": (
        "weights.safetensors",
        change_kwargs(time=TIME | {"n_buckets": 12}),
        r"'time_factors.weight': \(12, 12\)",
    ),
    "levels out of order": (
        "config.json",
        change_kwargs(levels=[*HALF_STARS[:-2], 5.0, 4.5]),
        "has invalid model_kwargs: levels must be strictly ascending",
    ),
    "a NaN level": (
        "config.json",
        change_kwargs(levels=[*HALF_STARS[:-1], float("nan")]),
        "levels must be finite numbers",
    ),
    "levels off the rating scale": (
        "config.json",
        change_kwargs(levels=[*HALF_STARS[:-1], 10.0]),
        "levels must lie on the rating scale 0.5..5.0",
    ),
    "a default bucket past the buckets": (
        "config.json",
        change_kwargs(time=TIME | {"default_bucket": 10}),
        "time.default_bucket must be an integer in 0..n_buckets - 1",
    ),
    "a time without its width": (
        "config.json",
        change_kwargs(time={key: TIME[key] for key in TIME if key != "width"}),
        "time must hold exactly",
    ),
}


@pytest.fixture(scope="module")
def probit_folder(served_inputs, tmp_path_factory) -> Path:
    config = sampled_config(4, 5, **KINDS["ordered probit with time"])
    weights = forgetting_unseen(config, random_weights(config, seed=4))
    folder = tmp_path_factory.mktemp("sampled") / "served_model"
    save_served_model(assemble_served_model(config, weights, **served_inputs), folder)
    return folder


@pytest.mark.parametrize("case", list(STRUCTURE_CASES))
def test_a_broken_sampled_model_is_refused_at_load_naming_the_file(
    probit_folder, tmp_path, case
):
    assert_damage_refused_at_load(probit_folder, tmp_path, STRUCTURE_CASES[case])


def test_a_bad_timestamp_on_a_fold_in_row_is_refused_too(sampled_parts):
    _, _, served = sampled_parts
    request = pd.DataFrame(
        {
            "userId": [999, 999],
            "movieId": [1, 2],
            "rating": [4.0, np.nan],
            "timestamp": pd.Series([-3, None], dtype=object),
        }
    )
    with pytest.raises(ValueError, match=r"Column 'timestamp' .*got \[-3\]"):
        answer_request(served, request)
    request["timestamp"] = [None, IN_THE_FIRST_BUCKET]
    folded = answer_request(served, request)
    assert folded["movieId"].tolist() == [2]
    assert folded["fallback"].isna().all()
