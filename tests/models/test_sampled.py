"""``SampledFactorization``: bayesian_fm's kept samples side by side, predicting the
format's expected rating (regression or ordered probit, with or without time) exactly
as a plain numpy evaluation of the formula, in bounded memory, and ranked by the one
scoring and top-K kernel as its full predictions sort."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rating_prediction.models import sampled
from rating_prediction.models.config import ModelConfig, build_model, load_trained_model
from rating_prediction.models.sampled import (
    SampledFactorization,
    unordered_cutpoints,
    weight_shapes,
)
from rating_prediction.models.scoring import (
    PairScorer,
    UserVectors,
    lookup_users,
    score_block,
    score_pairs_in_batches,
    top_k,
)
from tests.models.sampled_fixtures import (
    DAY,
    HALF_STARS,
    TIME,
    WHOLE_STARS,
    random_weights,
    reference_predictions,
    sampled_config,
)

N_USERS, N_MOVIES = 7, 11
KINDS = {
    "regression": {},
    "regression with time": {"time": TIME},
    "ordered probit": {"levels": WHOLE_STARS},
    "ordered probit with time": {"levels": HALF_STARS, "time": TIME},
}


def trained(kind: str, seed: int = 0) -> tuple[dict, dict, SampledFactorization]:
    config = sampled_config(N_USERS, N_MOVIES, **KINDS[kind])
    weights = random_weights(config, seed)
    return config, weights, load_trained_model(config, weights)


def every_pair_with_unknowns() -> tuple[np.ndarray, np.ndarray]:
    users = np.repeat(np.arange(-1, N_USERS), N_MOVIES + 1)
    movies = np.tile(np.arange(-1, N_MOVIES), N_USERS + 1)
    return users, movies


def timestamps_of(rows: int, seed: int = 0) -> np.ndarray:
    """Unix seconds before, inside and past the buckets, and some NaN (none given)."""
    generator = np.random.default_rng(seed)
    start = TIME["origin"] - 60 * DAY
    stop = TIME["origin"] + (TIME["n_buckets"] + 3) * TIME["width"]
    seconds = generator.integers(start, stop, rows).astype(np.float64)
    seconds[::5] = np.nan
    return seconds


@pytest.mark.parametrize("kind", list(KINDS))
def test_predictions_are_the_formula_of_the_samples(kind):
    config, weights, model = trained(kind)
    users, movies = every_pair_with_unknowns()
    seconds = timestamps_of(len(users))
    predicted = model.predict(
        torch.from_numpy(users), torch.from_numpy(movies), torch.from_numpy(seconds)
    )
    assert predicted.dtype == torch.float64
    expected = reference_predictions(config, weights, users, movies, seconds)
    np.testing.assert_allclose(predicted.numpy(), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", ["regression with time", "ordered probit with time"])
def test_no_timestamp_is_the_default_bucket_and_time_matters(kind):
    config, weights, model = trained(kind)
    users, movies = every_pair_with_unknowns()
    pairs = torch.from_numpy(users), torch.from_numpy(movies)
    default = model.predict(*pairs)
    in_default_bucket = TIME["origin"] + TIME["default_bucket"] * TIME["width"] + DAY
    np.testing.assert_allclose(
        default.numpy(),
        model.predict(*pairs, torch.full((len(users),), in_default_bucket)).numpy(),
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        default.numpy(),
        reference_predictions(config, weights, users, movies),
        rtol=0,
        atol=1e-9,
    )
    first_bucket = model.predict(*pairs, torch.full((len(users),), TIME["origin"]))
    assert not torch.allclose(default, first_bucket)


def test_a_model_without_time_ignores_timestamps():
    _, _, model = trained("ordered probit")
    users, movies = (torch.from_numpy(ids) for ids in every_pair_with_unknowns())
    assert torch.equal(
        model.predict(users, movies),
        model.predict(users, movies, torch.zeros(len(users))),
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_unknown_user_or_movie_has_zero_rows(kind):
    config, weights, model = trained(kind)
    known = model.predict(torch.tensor([2]), torch.tensor([3]))
    unknown = model.predict(torch.tensor([-1, 2, -1]), torch.tensor([3, -1, -1]))
    zeroed = dict(weights)
    for name in ("user_factors.weight", "user_bias.weight"):
        zeroed[name] = weights[name].clone()
        zeroed[name][2] = 0
    without_user = load_trained_model(config, zeroed)
    assert torch.equal(
        unknown[0], without_user.predict(torch.tensor([2]), torch.tensor([3]))[0]
    )
    assert not torch.equal(unknown[0], known[0])
    predictions = model.predict(torch.tensor([-1]), torch.tensor([-1]))
    np.testing.assert_allclose(
        predictions.numpy(),
        reference_predictions(config, weights, np.array([-1]), np.array([-1])),
        atol=1e-12,
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_score_matrix_is_every_pair_at_the_default_bucket(kind):
    """Regression's score matrix is ``predict``'s to float64 rounding; ordered
    probit's takes each sample's probabilities in float32, within 1e-6."""
    _, _, model = trained(kind)
    users = np.array([3, -1, 0, 6])
    block = score_block(model, users)
    assert block.shape == (4, N_MOVIES)
    assert block.dtype == torch.float64
    pairs = model.predict(
        torch.from_numpy(users).repeat_interleave(N_MOVIES),
        torch.arange(N_MOVIES).repeat(len(users)),
    )
    tolerance = 1e-6 if "levels" in KINDS[kind] else 1e-12
    torch.testing.assert_close(
        block, pairs.reshape(4, N_MOVIES), rtol=0, atol=tolerance
    )
    torch.testing.assert_close(
        model.predict_all_movies(torch.from_numpy(users), 5), block[:, :5]
    )


@pytest.mark.parametrize("kind", ["regression with time", "ordered probit with time"])
def test_the_kernels_top_k_is_the_full_predictions_sorted(kind):
    config = sampled_config(40, 300, **KINDS[kind])
    model = load_trained_model(config, random_weights(config, seed=3))
    users = np.arange(40)
    top, valid = top_k(score_block(model, users).numpy(), 10)
    full = model.predict(
        torch.from_numpy(users).repeat_interleave(300), torch.arange(300).repeat(40)
    ).reshape(40, 300)
    by_prediction = np.argsort(-full.numpy(), axis=1, kind="stable")[:, :10]
    assert valid.all()
    assert np.array_equal(top, by_prediction)


@pytest.mark.parametrize("kind", list(KINDS))
def test_chunked_work_gives_the_same_predictions(kind, monkeypatch):
    config, weights, model = trained(kind)
    users, movies = every_pair_with_unknowns()
    seconds = torch.from_numpy(timestamps_of(len(users)))
    pairs = torch.from_numpy(users), torch.from_numpy(movies)
    whole = model.predict(*pairs, seconds)
    block = score_block(model, np.arange(N_USERS))
    # One pair, or one sample of a block, at a time: memory bounded by the chunk.
    monkeypatch.setattr(sampled, "CHUNK_ELEMENTS", 1)
    torch.testing.assert_close(
        model.predict(*pairs, seconds), whole, rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        score_block(model, np.arange(N_USERS)), block, rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("kind", ["regression with time", "ordered probit"])
def test_the_pair_scorer_takes_timestamps_and_folded_in_vectors(kind):
    config, weights, model = trained(kind)
    users, movies = every_pair_with_unknowns()
    seconds = timestamps_of(len(users))
    scorer = PairScorer(model)
    scored = score_pairs_in_batches(scorer, users, movies, 5, timestamps=seconds)
    np.testing.assert_allclose(
        scored,
        reference_predictions(config, weights, users, movies, seconds),
        atol=1e-9,
    )
    # Vectors of users 4 and 1, indexed by their rows 0 and 1 (-1: unknown).
    vectors = lookup_users(model, np.array([4, 1]))
    assert vectors.biases.shape == (2, 4)
    rows = np.array([0, 1, -1, 0])
    folded = score_pairs_in_batches(
        scorer, rows, np.array([2, 3, 3, -1]), 3, vectors, timestamps=seconds[:4]
    )
    own = model.predict(
        torch.tensor([4, 1, -1, 4]),
        torch.tensor([2, 3, 3, -1]),
        torch.from_numpy(seconds[:4]),
    )
    np.testing.assert_allclose(folded, own.numpy(), rtol=0, atol=1e-12)
    block = score_block(
        model, np.array([0, 0]), UserVectors(vectors.factors, vectors.biases)
    )
    torch.testing.assert_close(block, score_block(model, np.array([4, 1])))


def test_the_state_dict_is_the_exported_format():
    for kind in KINDS:
        config, _, model = trained(kind)
        shapes = weight_shapes(N_USERS, N_MOVIES, config["model_kwargs"])
        assert {
            name: tuple(t.shape) for name, t in model.state_dict().items()
        } == shapes
        assert all(t.dtype == torch.float32 for t in model.state_dict().values())
    assert set(shapes) == {
        "user_factors.weight",
        "movie_factors.weight",
        "user_bias.weight",
        "movie_bias.weight",
        "intercepts",
        "time_factors.weight",
        "time_bias.weight",
        "cutpoints",
    }
    assert shapes["cutpoints"] == (4, 9)


def test_the_config_names_the_class_from_the_variants_closed_table():
    config = sampled_config(N_USERS, N_MOVIES, levels=WHOLE_STARS, time=TIME)
    parsed = ModelConfig.model_validate_json(json.dumps(config))
    assert parsed.model_kwargs["levels"] == WHOLE_STARS
    assert parsed.model_kwargs["time"] == TIME
    assert type(build_model(parsed)) is SampledFactorization
    assert build_model(parsed).default_bucket == 9
    # Without the field, an old config rebuilds the variant's own class.
    old = {key: value for key, value in config.items() if key != "model_class"}
    old["model_kwargs"] = {"embedding_dim": 3, "global_mean": 3.5}
    assert type(build_model(old)).__name__ == "BiasedMatrixFactorization"
    with pytest.raises(ValueError, match="not a model class of the biased_mf variant"):
        ModelConfig.model_validate(config | {"variant": "biased_mf"})
    path = "rating_prediction.models.sampled.SampledFactorization"
    with pytest.raises(ValueError, match="valid: BiasedMatrixFactorization, Sampled"):
        ModelConfig.model_validate(config | {"model_class": path})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"levels": [1.0, 3.0, 2.0]}, "levels must be strictly ascending"),
        ({"levels": [4.0]}, "at least two ratings"),
        ({"time": TIME | {"default_bucket": 10}}, "default_bucket must be an integer"),
        ({"time": TIME | {"width": 0}}, "width must be above 0"),
        ({"time": {"origin": 0}}, "time must hold exactly"),
        ({"n_samples": 0}, "n_samples must be an integer of at least 1"),
        ({"levels": [0.0, 1.0]}, "levels must lie on the rating scale"),
    ],
)
def test_bad_arguments_are_refused_naming_them(changes, message):
    config = sampled_config(N_USERS, N_MOVIES, levels=WHOLE_STARS, time=TIME)
    config["model_kwargs"] |= changes
    with pytest.raises(ValueError, match=message):
        build_model(config)


def test_descending_cutpoints_are_found():
    cutpoints = torch.tensor([[-1.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 1.0, 0.5]])
    assert unordered_cutpoints(cutpoints) == 2
    assert unordered_cutpoints(cutpoints[:2]) is None


def test_ordered_probit_stays_within_its_levels_and_rises_with_the_score():
    config, weights, _ = trained("ordered probit")
    pair = torch.tensor([2]), torch.tensor([3])

    def predicted(intercept: float) -> float:
        shifted = dict(weights) | {"intercepts": torch.full((4,), intercept)}
        return load_trained_model(config, shifted).predict(*pair).item()

    assert predicted(-50.0) == pytest.approx(1.0, abs=1e-12)
    assert predicted(50.0) == pytest.approx(5.0, abs=1e-12)
    assert predicted(-1.0) < predicted(0.0) < predicted(1.0)
