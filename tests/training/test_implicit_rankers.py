"""ALS and BPR fitted by ``implicit``: seeded, on the feedback asked for, saved as
rankers whose fold-in is ALS's own user step; and their parameters."""

from __future__ import annotations

import warnings

import implicit
import numpy as np
import polars as pl
import pytest
import scipy.sparse
import torch

from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.rankers import AlsRanker, BprRanker
from rating_prediction.parameters import (
    AlsParameters,
    BprParameters,
    ParameterError,
    parse,
)
from rating_prediction.parameters.training import TrainingParameters
from rating_prediction.training.data import TrainingData
from rating_prediction.training.implicit_rankers import fit_variant
from tests.training.fixtures import project_training_parameters

N_USERS, N_MOVIES = 40, 16
# Movie 15 has no rating at all, movie 14 only ratings below 3; user 39 has none.
NEVER_RATED, RATED_LOW, SILENT_USER = 15, 14, 39


def ratings() -> pl.DataFrame:
    """Two tastes: even users rate movies 0..6, odd users 7..13, each a random half
    of them; a few users also rate movie 14 poorly."""
    generator = np.random.default_rng(7)
    rows = []
    for user in range(N_USERS - 1):
        first = 0 if user % 2 == 0 else 7
        for movie in range(first, first + 7):
            if generator.random() < 0.5:
                rows.append((user, movie, float(generator.integers(5, 11)) / 2))
        if user % 5 == 0:
            rows.append((user, RATED_LOW, 1.5))
    users, movies, values = zip(*rows)
    return pl.DataFrame(
        {"userIdMapped": users, "movieIdMapped": movies, "rating": values},
        schema={
            "userIdMapped": pl.Int32,
            "movieIdMapped": pl.Int32,
            "rating": pl.Float32,
        },
    )


def data() -> TrainingData:
    train = ratings()
    return TrainingData(train, train.head(5), N_USERS, N_MOVIES)


def fit(variant: str, **options):
    parameters = AlsParameters if variant == "als" else BprParameters
    weights, config, history = fit_variant(variant, parameters(**options), data())
    return weights, config, history


@pytest.mark.parametrize(
    ("variant", "options"),
    [("als", {"factors": 4}), ("bpr", {"factors": 4, "num_threads": 1})],
)
def test_a_seeded_fit_repeats_and_another_seed_differs(variant, options):
    first, config, _ = fit(variant, **options)
    again, _, _ = fit(variant, **options)
    other, _, _ = fit(variant, **options, seed=7)
    assert (
        first.keys()
        == again.keys()
        == {
            "user_factors",
            "item_factors",
            "fitted_movies",
        }
    )
    for name in first:
        assert torch.equal(first[name], again[name])
    assert not torch.equal(first["item_factors"], other["item_factors"])
    assert config == ModelConfig.model_validate(config.model_dump())


@pytest.mark.parametrize(
    ("variant", "model_class", "width"), [("als", AlsRanker, 4), ("bpr", BprRanker, 5)]
)
def test_the_weights_load_as_the_ranker_and_unfitted_rows_are_zero(
    variant, model_class, width
):
    weights, config, history = fit(variant, factors=4, num_threads=1)
    model = load_trained_model(config, weights)
    assert type(model) is model_class
    # BPR's item bias is one more column.
    assert config.model_kwargs["n_factors"] == width
    assert weights["user_factors"].shape == (N_USERS, width)
    assert weights["item_factors"].dtype == torch.float32
    assert weights["user_factors"][SILENT_USER].eq(0).all()
    assert weights["item_factors"][NEVER_RATED].eq(0).all()
    assert weights["fitted_movies"].tolist() == [True] * 15 + [False]
    scores = model.predict_all_movies(torch.arange(N_USERS), N_MOVIES)
    assert scores[:, NEVER_RATED].isneginf().all()
    assert torch.isfinite(scores[:, :NEVER_RATED]).all()
    assert history.columns == ["settings", "n_items", "n_interactions", "fit_seconds"]
    assert history.row(0)[1:3] == (15, ratings().height)


@pytest.mark.parametrize("variant", ["als", "bpr"])
def test_min_rating_drops_the_interactions_below_it(variant):
    weights, _, history = fit(variant, factors=4, min_rating=3.0, num_threads=1)
    assert (
        history["n_interactions"].item()
        == ratings().filter(pl.col("rating") >= 3.0).height
    )
    # Movie 14 was only rated below 3: it has no factors now.
    assert not weights["fitted_movies"][RATED_LOW]
    assert weights["item_factors"][RATED_LOW].eq(0).all()


@pytest.mark.parametrize("feedback", ["binary", "rating"])
def test_als_fold_in_of_a_users_own_interactions_gives_their_scores(feedback):
    """Folding a training user in from their own interactions repeats ALS's user
    step against the final movie factors: near their fitted scores once converged."""
    weights, config, _ = fit(
        "als", factors=4, iterations=60, alpha=5.0, feedback=feedback
    )
    model = load_trained_model(config, weights)
    train = ratings()
    for user in (0, 1, 10):
        own = train.filter(pl.col("userIdMapped") == user)
        movies = torch.from_numpy(own["movieIdMapped"].to_numpy().astype(np.int64))
        values = own["rating"].to_numpy() if feedback == "rating" else np.ones(len(own))
        folded = model.fold_in_scores(movies, torch.tensor(values, dtype=torch.float32))
        fitted = model.predict_all_movies(torch.tensor([user]), N_MOVIES)[0]
        torch.testing.assert_close(folded, fitted, atol=2e-3, rtol=1e-2)


def test_als_fold_in_is_implicits_own_recalculate_user():
    """The ranker's fold-in solves what implicit's exact user step solves, given the
    confidences 1 + alpha * value the fit hands it."""
    weights, config, _ = fit("als", factors=4, regularization=0.3, alpha=5.0)
    model = load_trained_model(config, weights)
    reference = implicit.cpu.als.AlternatingLeastSquares(
        factors=4, regularization=0.3, alpha=1.0
    )
    reference.item_factors = weights["item_factors"].numpy()
    own = ratings().filter(pl.col("userIdMapped") == 3)
    movies = own["movieIdMapped"].to_numpy().astype(np.int64)
    confidence = np.zeros((1, N_MOVIES), dtype=np.float32)
    confidence[0, movies] = 1.0 + 5.0 * 1.0
    user = reference.recalculate_user(0, scipy.sparse.csr_matrix(confidence))
    expected = reference.item_factors @ user
    folded = model.fold_in_scores(torch.from_numpy(movies), torch.ones(len(movies)))
    np.testing.assert_allclose(
        folded[:NEVER_RATED].numpy(), expected[:NEVER_RATED], atol=1e-5
    )


def test_the_fit_is_quiet(monkeypatch, capsys):
    # implicit checks the BLAS threads once per process: let it check again.
    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit("als", factors=4)
        fit("bpr", factors=4)
    assert [str(warning.message) for warning in caught] == []
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        (AlsParameters, {"factors": 0}, "training.als.factors"),
        (AlsParameters, {"regularization": 0}, "training.als.regularization"),
        (AlsParameters, {"alpha": -1.0}, "training.als.alpha"),
        (AlsParameters, {"iterations": 0}, "training.als.iterations"),
        (AlsParameters, {"feedback": "implicit"}, "'binary' or 'rating'"),
        (AlsParameters, {"num_threads": -1}, "training.als.num_threads"),
        (AlsParameters, {"learning_rate": 0.1}, "unknown key 'training.als.learning"),
        (BprParameters, {"learning_rate": 0}, "training.bpr.learning_rate"),
        (BprParameters, {"regularization": -0.1}, "training.bpr.regularization"),
        (BprParameters, {"fold_in_regularization": 0}, "fold_in_regularization"),
        (BprParameters, {"min_rating": -1}, "training.bpr.min_rating"),
        (BprParameters, {"feedback": "rating"}, "binary feedback only"),
        (BprParameters, {"alpha": 10}, "unknown key 'training.bpr.alpha'"),
    ],
)
def test_unusable_parameters_are_refused_naming_their_key(model, values, message):
    key = "training.als" if model is AlsParameters else "training.bpr"
    with pytest.raises(ParameterError, match=message):
        parse(model, values, key)


@pytest.mark.parametrize("variant", ["als", "bpr"])
def test_the_conf_block_is_the_parameter_models_defaults(variant):
    """conf/base/parameters_training.yml and the parameter model say the same, so a
    run without the block (the model's default) fits what the docs describe."""
    parameters = TrainingParameters.model_fields[variant].default
    assert parse(type(parameters), project_training_parameters()[variant], "") == (
        parameters
    )
