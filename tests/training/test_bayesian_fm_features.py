"""bayesian_fm's ordered probit, time block and side information (issue #25): every
feature family is built from the fitted ratings only, ordered probit works on any
discrete scale, and the exported model reproduces myFM's own predictions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from rating_prediction.data.schema import RatingScale
from rating_prediction.models.config import load_trained_model
from rating_prediction.parameters import BayesianFMParameters, ParameterError, parse
from rating_prediction.training import bayesian_fm
from rating_prediction.training.bayesian_fm import (
    BayesianFMSettings,
    RelationBlocks,
    SideFeatures,
    export_samples,
    fit,
)
from rating_prediction.training.bayesian_fm.features import (
    DAY_SECONDS,
    demographic_matrices,
    side_features,
    year_matrix,
)
from rating_prediction.training.bayesian_fm.sampling import rating_levels
from rating_prediction.training.data import TrainingData
from tests.fakes import fake_movies, learnable_splits

SHORT_CHAIN = {"n_iter": 12, "n_kept_samples": 6, "rank": 3}
# 2001-09-09 (a day's start is 1_000_000_000 - 6_400): the fakes' first rating day.
START = 1_000_000_000
N_USERS, N_MOVIES = 120, 40


def _dated(ratings: pl.DataFrame, hours_apart: int = 3) -> pl.DataFrame:
    """The fakes' timestamps (0, 1, 2, ...) spread ``hours_apart`` hours apart."""
    return ratings.with_columns(
        timestamp=pl.col("timestamp") * hours_apart * 3600 + START
    )


@pytest.fixture(scope="module")
def data() -> dict[str, pl.DataFrame]:
    """Dated learnable splits; user 0 and movie 0 are rated in val and test only, and
    val holds the latest ratings' day."""
    splits = learnable_splits(n_users=N_USERS, n_movies=N_MOVIES, n_ratings=2_400)
    dated = {name: _dated(splits[f"{name}_ratings"]) for name in ("train", "val")}
    latest = dated["val"]["timestamp"].max()
    train = dated["train"].filter(
        (pl.col("userIdMapped") != 0)
        & (pl.col("movieIdMapped") != 0)
        & (pl.col("timestamp") < latest - 2 * DAY_SECONDS)
    )
    return {
        **splits,
        "train_ratings": train,
        "val_ratings": dated["val"],
        "test_ratings": _dated(splits["test_ratings"]),
    }


def _movies(movie_mapping: pl.DataFrame) -> pl.DataFrame:
    """Titles with a year: movie 0 (never fitted) alone has 1920, movies 1..9 have
    1990..1998 (each its own), the others none."""
    movies = fake_movies(movie_mapping)
    years = {0: 1920, **{index: 1989 + index for index in range(1, 10)}}
    titles = [
        f"Movie {index} ({years[index]}) " if index in years else f"Movie {index}"
        for index in range(movies.height)
    ]
    return movies.with_columns(title=pl.Series(titles))


def _users(user_mapping: pl.DataFrame) -> pl.DataFrame:
    """Demographics as ml-100k's u.user has them; user 0 (never fitted) alone is a
    "lawyer", and every user's age, gender and zip code come from a small set."""
    n_users = user_mapping.height
    return pl.DataFrame(
        {
            "userId": user_mapping["userId"],
            "age": [18 + 10 * (index % 3) for index in range(n_users)],
            "gender": ["M" if index % 2 else "F" for index in range(n_users)],
            "occupation": ["lawyer"]
            + [("student", "writer")[index % 2] for index in range(1, n_users)],
            "zip": [f"{index % 4}1234" for index in range(n_users)],
        },
        schema_overrides={"age": pl.Int32},
    )


def test_every_feature_family_comes_from_the_fitted_ratings_only(data):
    train = data["train_ratings"]
    side = SideFeatures(
        users=demographic_matrices(_users(data["user_mapping"]), data["user_mapping"]),
        movies=(year_matrix(_movies(data["movie_mapping"]), data["movie_mapping"]),),
    )
    blocks = RelationBlocks.from_ratings(
        train,
        (N_USERS, N_MOVIES),
        implicit=False,
        flipped=False,
        side=side,
        time_bucket_days=1,
    )
    # The years of fitted movies only: 1920 (movie 0's alone) has no column.
    assert blocks.groups[-2] == 9
    years = blocks.movies[:, N_MOVIES:].toarray()
    assert years[0].sum() == 0 and np.array_equal(years[1:10], np.eye(9))
    # Demographics: ages 18/28/38, F/M, student/writer (no lawyer), 4 zip regions.
    assert blocks.groups[1:5] == (3, 2, 2, 4)
    occupations = blocks.users[:, N_USERS + 5 : N_USERS + 7].toarray()
    assert occupations[0].sum() == 0 and occupations[1:].sum(axis=1).min() == 1
    # Time: from the first fitted day to the last; val's later days clamp to the end.
    first, last = train["timestamp"].min(), train["timestamp"].max()
    origin = first // DAY_SECONDS * DAY_SECONDS
    assert blocks.time.origin == origin
    assert blocks.time.n_buckets == (last - origin) // DAY_SECONDS + 1
    assert blocks.groups[-1] == blocks.time.n_buckets
    val_buckets = blocks.time.of(data["val_ratings"]["timestamp"])
    assert val_buckets.max() == blocks.time.n_buckets - 1
    assert data["val_ratings"]["timestamp"].max() > last + DAY_SECONDS
    fitted_days = np.unique(blocks.time.of(train["timestamp"]))
    assert np.array_equal(np.flatnonzero(blocks.time_rows.diagonal()), fitted_days)


def test_a_day_no_fitted_rating_falls_in_is_an_empty_bucket():
    splits = learnable_splits(n_users=30, n_movies=10, n_ratings=200)
    train = _dated(splits["train_ratings"], hours_apart=48)  # every other day
    blocks = RelationBlocks.from_ratings(train, (30, 10), time_bucket_days=1)
    rated = blocks.time_rows.diagonal()
    assert rated.sum() == train.height < blocks.time.n_buckets
    assert blocks.time.served() == {
        "origin": blocks.time.origin,
        "width": DAY_SECONDS,
        "n_buckets": blocks.time.n_buckets,
        "default_bucket": blocks.time.n_buckets - 1,
    }


def test_the_side_switches_read_the_tables_and_name_a_missing_one(data):
    tables = {
        "movies": _movies(data["movie_mapping"]),
        "movie_mapping": data["movie_mapping"],
        "users": None,
        "user_mapping": data["user_mapping"],
    }
    features = BayesianFMParameters.model_validate(
        {"features": {"genres": True, "release_year": True}}
    ).features
    side = side_features(features, tables)
    assert [part.shape[1] for part in side.movies] == [3, 10] and side.users == ()
    with pytest.raises(ValueError, match="features.user_demographics needs the users"):
        side_features(features.model_copy(update={"user_demographics": True}), tables)


def test_a_release_without_demographics_adds_no_user_part(data):
    users = _users(data["user_mapping"]).with_columns(
        pl.lit(None, pl.Int32).alias("age"),
        *(pl.lit(None, pl.String).alias(c) for c in ("gender", "occupation", "zip")),
    )
    assert demographic_matrices(users, data["user_mapping"]) == ()


def _fit_options(**values) -> BayesianFMParameters:
    features = {"genres": False, **values.pop("features", {})}
    return BayesianFMParameters.model_validate(
        {**SHORT_CHAIN, "features": features, **values}
    )


@pytest.mark.parametrize(("factor", "levels"), [(0.5, 5), (1.0, 10)])
def test_ordered_probit_on_whole_stars_and_on_ten_points(data, factor, levels):
    """Whole stars 1..5 and points 1..10: the classes are the fitted levels, each
    sample's cutpoints ascend, and the served expected rating is myFM's."""
    splits = [
        data[name].with_columns((pl.col("rating") * 2 * factor).ceil().clip(1, None))
        for name in ("train_ratings", "val_ratings")
    ]
    assert rating_levels(splits[0]) == tuple(float(k) for k in range(1, levels + 1))
    options = _fit_options(likelihood="ordered_probit", refit_on_train_val=False)
    scale = RatingScale(1.0, float(levels))
    weights, config, _ = bayesian_fm.fit_bayesian_fm(
        options, tuple(splits), (N_USERS, N_MOVIES), scale=scale
    )
    assert config.model_class == "SampledFactorization"
    assert config.model_kwargs["levels"] == list(range(1, levels + 1))
    assert config.model_kwargs["time"] is None
    cutpoints = weights["cutpoints"]
    assert cutpoints.shape == (config.model_kwargs["n_samples"], levels - 1)
    assert bool((cutpoints.diff(dim=1) > 0).all())
    # The saved model is the running mean of the expected rating that scored best.
    val = splits[1]
    predicted = _served(load_trained_model(config, weights), val)
    mse = np.mean((predicted - val["rating"].to_numpy()) ** 2)
    assert mse == pytest.approx(config.best_val_loss, rel=1e-5)
    assert mse < np.var(val["rating"].to_numpy())


def test_ordered_probit_refuses_a_scale_that_is_not_discrete(data):
    rng = np.random.default_rng(0)
    continuous = data["train_ratings"].with_columns(
        rating=pl.Series(rng.uniform(0, 5, data["train_ratings"].height))
    )
    options = _fit_options(likelihood="ordered_probit")
    with pytest.raises(ValueError, match="training.bayesian_fm.likelihood"):
        bayesian_fm.fit_bayesian_fm(
            options, (continuous, data["val_ratings"]), (N_USERS, N_MOVIES)
        )


def _served(model, ratings: pl.DataFrame, dated: bool = True) -> np.ndarray:
    """The served model's prediction of each rating (at its timestamp, or none)."""
    columns = [
        ratings[c].to_numpy().astype(np.int64)
        for c in ("userIdMapped", "movieIdMapped")
    ]
    stamps = torch.tensor(ratings["timestamp"].to_numpy()) if dated else None
    users, movies = (torch.from_numpy(column) for column in columns)
    return model.predict(users, movies, stamps).numpy()


def _myfms_own(model, blocks, ratings, levels) -> np.ndarray:
    relations = blocks.for_rows(ratings)
    if levels is None:
        return model.predict(None, relations)
    return model.predict_proba(None, relations) @ np.asarray(levels)


@pytest.mark.parametrize(
    ("levels", "time_bucket_days"),
    [
        (None, 1),
        ((0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0), None),
        ((0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0), 1),
    ],
    ids=["regression+time", "probit", "probit+time"],
)
def test_the_served_model_reproduces_myfms_predictions(data, levels, time_bucket_days):
    """To 1e-5 on every split (unfitted user 0, movie 0 and val's later days
    included): myFM's ``predict`` (regression) or ``predict_proba @ levels``, with
    each rating's date, and without one at the last fitted day ("now")."""
    train = data["train_ratings"]
    side = SideFeatures(
        movies=(year_matrix(_movies(data["movie_mapping"]), data["movie_mapping"]),)
    )
    blocks = RelationBlocks.from_ratings(
        train, (N_USERS, N_MOVIES), side=side, time_bucket_days=time_bucket_days
    )
    settings = BayesianFMSettings(**SHORT_CHAIN, levels=levels)
    model = fit(settings, train, blocks)
    weights = export_samples(model, blocks)
    kwargs = {"n_samples": 6, "rank": 3, "rating_min": -100.0, "rating_max": 100.0}
    kwargs |= {"levels": None if levels is None else list(levels)}
    kwargs |= {"time": None if blocks.time is None else blocks.time.served()}
    config = {
        "variant": "bayesian_fm",
        "n_users": N_USERS,
        "n_movies": N_MOVIES,
        "model_class": "SampledFactorization",
        "model_kwargs": kwargs,
    }
    served = load_trained_model(config, weights)
    rows = pl.concat([data[f"{split}_ratings"] for split in ("train", "val", "test")])
    expected = _myfms_own(model, blocks, rows, levels)
    np.testing.assert_allclose(_served(served, rows), expected, atol=1e-5)
    if blocks.time is not None:  # no date: the last fitted day
        now = rows.with_columns(timestamp=pl.lit(train["timestamp"].max()))
        expected = _myfms_own(model, blocks, now, levels)
        np.testing.assert_allclose(_served(served, rows, False), expected, atol=1e-5)


def test_the_variant_exports_a_sampled_model_with_time_and_side_data(data):
    """fit_variant end to end, demographics and years from the tables: the model
    class and arguments of the format, the demographics reach the model, and the
    served predictions on val are those of the running mean that scored
    best_val_loss."""
    training_data = TrainingData(
        train=data["train_ratings"],
        val=data["val_ratings"],
        n_users=N_USERS,
        n_movies=N_MOVIES,
        movies=_movies(data["movie_mapping"]),
        movie_mapping=data["movie_mapping"],
        users=_users(data["user_mapping"]),
        user_mapping=data["user_mapping"],
    )
    options = _fit_options(
        refit_on_train_val=False,
        features={
            "genres": True,
            "release_year": True,
            "user_demographics": True,
            "time_bucket_days": 7,
        },
    )
    weights, config, _ = bayesian_fm.fit_variant("bayesian_fm", options, training_data)
    assert config.model_class == "SampledFactorization"
    assert config.model_kwargs["levels"] is None
    assert config.model_kwargs["time"]["width"] == 7 * DAY_SECONDS
    n_buckets = config.model_kwargs["time"]["n_buckets"]
    assert weights["time_factors.weight"].shape == (n_buckets, 6 * 3)
    # User 0 is rated in val only: its demographics alone give it parameters.
    assert weights["user_bias.weight"][0].abs().sum() > 0
    assert weights["user_factors.weight"][0].abs().sum() > 0
    unclipped = config.model_kwargs | {"rating_min": -100.0, "rating_max": 100.0}
    model = load_trained_model(
        config.model_copy(update={"model_kwargs": unclipped}), weights
    )
    val = data["val_ratings"]
    mse = np.mean((_served(model, val) - val["rating"].to_numpy()) ** 2)
    assert mse == pytest.approx(config.best_val_loss, rel=1e-5)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"likelihood": "probit"}, "training.bayesian_fm.likelihood"),
        ({"features": {"time_bucket_days": 0}}, "features.time_bucket_days"),
        ({"features": {"time_bucket_days": 40_000}}, "features.time_bucket_days"),
        ({"features": {"release_year": "yes"}}, "features.release_year"),
        ({"features": {"demographics": True}}, "features.demographics"),
    ],
)
def test_the_new_switches_are_checked(values, key):
    with pytest.raises(ParameterError, match=key):
        parse(BayesianFMParameters, values, "training.bayesian_fm")


def _undated(ratings: pl.DataFrame) -> pl.DataFrame:
    """``ratings`` as a file of the user's own without a timestamp column reads."""
    return ratings.with_columns(pl.lit(None, pl.Int64).alias("timestamp"))


def test_ratings_without_timestamps_are_fitted_without_the_time_feature(data, caplog):
    """The default time feature cannot make a file without timestamps fail: the fit
    leaves the time block out and says so."""
    splits = (_undated(data["train_ratings"]), _undated(data["val_ratings"]))
    options = _fit_options(features={"time_bucket_days": 1})
    with caplog.at_level("WARNING"):
        _, config, _ = bayesian_fm.fit_bayesian_fm(options, splits, (N_USERS, N_MOVIES))
    assert config.model_class is None
    assert "features.time_bucket_days) is left out" in caplog.text


def test_the_time_feature_refuses_ratings_with_some_timestamps_missing(data):
    train = data["train_ratings"]
    partly = train.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.col("timestamp"))
    )
    options = _fit_options(features={"time_bucket_days": 1})
    with pytest.raises(ValueError, match="features.time_bucket_days: the time feature"):
        bayesian_fm.fit_bayesian_fm(
            options, (partly, data["val_ratings"]), (N_USERS, N_MOVIES)
        )
    with pytest.raises(ValueError, match="features.time_bucket_days: the time feature"):
        RelationBlocks.from_ratings(
            _undated(train), (N_USERS, N_MOVIES), time_bucket_days=1
        )
