"""The bayesian_fm variant: relation blocks from the fitted data only, the exact export to
the biased MF form, the val-chosen number of samples and its parameters."""

from __future__ import annotations

import io

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
    export_biased_mf,
    fit,
)
from rating_prediction.training.bayesian_fm.features import genre_matrix
from rating_prediction.training.bayesian_fm.sampling import (
    myfm,
    without_myfms_own_bar,
)
from rating_prediction.training.data import TrainingData
from tests.fakes import fake_movies, learnable_splits

SHORT_CHAIN = {"n_iter": 12, "n_kept_samples": 6, "rank": 3}


@pytest.fixture(scope="module")
def data() -> dict[str, pl.DataFrame]:
    """Learnable splits where user 0 and movie 0 are rated in val and test only."""
    splits = learnable_splits(n_users=120, n_movies=40, n_ratings=2_400)
    train = splits["train_ratings"].filter(
        (pl.col("userIdMapped") != 0) & (pl.col("movieIdMapped") != 0)
    )
    return {**splits, "train_ratings": train}


def _id_counts(data) -> tuple[int, int]:
    return data["user_mapping"].height, data["movie_mapping"].height


def test_relation_blocks_come_from_the_fitted_ratings_only(data):
    train, val = data["train_ratings"], data["val_ratings"]
    n_users, n_movies = _id_counts(data)
    blocks = RelationBlocks.from_ratings(train, (n_users, n_movies))

    assert blocks.groups == (n_users, n_movies, n_movies, n_users)
    implicit = blocks.users[:, n_users:].toarray()
    flipped = blocks.movies[:, n_movies:].toarray()
    rated = np.zeros((n_users, n_movies), dtype=bool)
    rated[train["userIdMapped"].to_numpy(), train["movieIdMapped"].to_numpy()] = True
    # Exactly the train pairs, each 1/sqrt(count); no val or test pair leaks in.
    assert np.array_equal(implicit > 0, rated)
    assert np.array_equal(flipped > 0, rated.T)
    counts = rated.sum(axis=1)
    user = int(np.argmax(counts))
    assert np.allclose(implicit[user][rated[user]], 1 / np.sqrt(counts[user]))
    val_only = val.join(train, on=["userIdMapped", "movieIdMapped"], how="anti")
    assert not implicit[val_only["userIdMapped"], val_only["movieIdMapped"]].any()
    # User 0 and movie 0 are not in train: all-zero rows, one-hot included.
    assert blocks.users[0].nnz == 0 and blocks.movies[0].nnz == 0
    assert blocks.users[1, 1] == 1.0


def test_blocks_without_implicit_features_and_with_genres(data):
    n_users, n_movies = _id_counts(data)
    genres = genre_matrix(fake_movies(data["movie_mapping"]), data["movie_mapping"])
    blocks = RelationBlocks.from_ratings(
        data["train_ratings"],
        (n_users, n_movies),
        implicit=False,
        flipped=False,
        side=SideFeatures(movies=(genres,)),
    )
    # The vocabulary is the genres that occur: Action, Comedy, Drama.
    assert genres.shape == (n_movies, 3)
    assert blocks.groups == (n_users, n_movies, 3)
    # Movie 1 is "Action|Comedy": two genres, each 1/sqrt(2); movie 4 has none.
    assert np.allclose(genres[1].toarray(), [[2**-0.5, 2**-0.5, 0]])
    assert genres[4].nnz == 0


@pytest.mark.parametrize("genres", [False, True])
def test_export_predicts_exactly_what_myfm_predicts(data, genres):
    n_users, n_movies = _id_counts(data)
    genre_table = genre_matrix(
        fake_movies(data["movie_mapping"]), data["movie_mapping"]
    )
    blocks = RelationBlocks.from_ratings(
        data["train_ratings"],
        (n_users, n_movies),
        side=SideFeatures(movies=(genre_table,) if genres else ()),
    )
    settings = BayesianFMSettings(rank=3, n_iter=12, n_kept_samples=6)
    model = fit(settings, data["train_ratings"], blocks)
    weights, global_mean = export_biased_mf(model, blocks)
    # Every split, with user 0 and movie 0 (no implicit data, never fitted) included.
    rows = pl.concat([data[f"{split}_ratings"] for split in ("train", "val", "test")])
    assert (rows["userIdMapped"] == 0).any() and (rows["movieIdMapped"] == 0).any()
    expected = model.predict(None, blocks.for_rows(rows))

    config = {
        "variant": "bayesian_fm",
        "n_users": n_users,
        "n_movies": n_movies,
        # A wide range, so the comparison sees the unclipped scores.
        "model_kwargs": {
            "embedding_dim": 18,
            "global_mean": global_mean,
            "rating_min": -100.0,
            "rating_max": 100.0,
        },
    }
    exported = load_trained_model(config, weights)
    predicted = exported.predict(
        torch.from_numpy(rows["userIdMapped"].to_numpy().astype(np.int64)),
        torch.from_numpy(rows["movieIdMapped"].to_numpy().astype(np.int64)),
    ).numpy()
    np.testing.assert_allclose(predicted, expected, atol=1e-5)
    assert weights["user_factors.weight"][0].abs().sum() == 0
    # Movie 0 was never fitted: only its genres (when used) give it parameters.
    assert (weights["movie_bias.weight"][0].item() != 0) is genres


def test_the_history_is_the_mse_of_the_running_posterior_mean(data):
    n_users, n_movies = _id_counts(data)
    train, val = data["train_ratings"], data["val_ratings"]
    blocks = RelationBlocks.from_ratings(train, (n_users, n_movies))
    settings = BayesianFMSettings(rank=3, n_iter=10, n_kept_samples=4)
    model, history = bayesian_fm.fit_with_history(settings, train, val, blocks)
    # The last row averages the 4 kept samples: what myFM predicts after the chain.
    for split, frame in (("train", train), ("val", val)):
        predicted = model.predict(None, blocks.for_rows(frame))
        mse = np.mean((predicted - frame["rating"].to_numpy()) ** 2)
        assert history[f"{split}_loss"][-1] == pytest.approx(mse, rel=1e-6)


def test_a_history_sample_measures_the_same_chain_on_fewer_rows(data):
    """history_rows: the chain is the same (fitted on every training rating); each
    loss is the running mean's MSE on the seeded sample of that split."""
    n_users, n_movies = _id_counts(data)
    train, val = data["train_ratings"], data["val_ratings"]
    blocks = RelationBlocks.from_ratings(train, (n_users, n_movies))
    settings = BayesianFMSettings(rank=3, n_iter=6, n_kept_samples=3, seed=5)
    rows = val.height // 3
    model, history = bayesian_fm.fit_with_history(settings, train, val, blocks, rows)
    full_model, _ = bayesian_fm.fit_with_history(settings, train, val, blocks)
    for split, frame in (("train", train), ("val", val)):
        sample = frame.sample(rows, seed=5)
        predicted = model.predict(None, blocks.for_rows(sample))
        mse = np.mean((predicted - sample["rating"].to_numpy()) ** 2)
        assert history[f"{split}_loss"][-1] == pytest.approx(mse, rel=1e-6)
        np.testing.assert_allclose(
            predicted, full_model.predict(None, blocks.for_rows(sample)), rtol=1e-6
        )


def test_a_fit_sample_is_the_fit_of_those_ratings_alone(data):
    """max_fit_ratings: sampling on a seeded sample of the fitted ratings is sampling
    on exactly those ratings (blocks included), nothing else changed."""
    options = {
        **SHORT_CHAIN,
        "refit_on_train_val": False,
        "features": {"genres": False},
    }
    capped = BayesianFMParameters.model_validate({**options, "max_fit_ratings": 150})
    train, val = data["train_ratings"], data["val_ratings"]
    sample = bayesian_fm.fitted_ratings([train], capped)
    assert sample.height == 150
    assert sample.columns == ["userIdMapped", "movieIdMapped", "rating"]
    assert bayesian_fm.fitted_ratings([train, val], capped).height == 150
    capped_fit = bayesian_fm.fit_bayesian_fm(capped, (train, val), _id_counts(data))
    plain = BayesianFMParameters.model_validate(options)
    sample_fit = bayesian_fm.fit_bayesian_fm(plain, (sample, val), _id_counts(data))
    for name, tensor in capped_fit[0].items():
        torch.testing.assert_close(tensor, sample_fit[0][name])
    assert capped_fit[2].equals(sample_fit[2])


@pytest.mark.parametrize("refit", [False, True])
def test_fit_chooses_the_samples_on_val_and_refits_on_train_and_val(data, refit):
    options = BayesianFMParameters.model_validate(
        {**SHORT_CHAIN, "refit_on_train_val": refit, "features": {"genres": False}}
    )
    weights, config, history = bayesian_fm.fit_bayesian_fm(
        options, (data["train_ratings"], data["val_ratings"]), _id_counts(data)
    )
    assert history.columns == ["epoch", "train_loss", "val_loss"]
    assert history["epoch"].to_list() == list(range(1, 13))
    kept = history.filter(pl.col("epoch") > 6)
    assert config.best_val_loss == pytest.approx(kept["val_loss"].min())
    assert config.best_epoch == kept["epoch"][int(kept["val_loss"].arg_min())]
    assert config.model_kwargs["embedding_dim"] == 3 * (config.best_epoch - 6)
    assert config.refit_on_train_val is refit
    assert (
        weights["user_factors.weight"].shape[1] == config.model_kwargs["embedding_dim"]
    )
    # User 0 is rated in val only: it has parameters only when val is fitted too.
    user_0_known = bool(weights["user_factors.weight"][0].abs().sum() > 0)
    assert user_0_known is refit
    if not refit:  # the saved model is the running mean that scored best_val_loss
        unclipped = config.model_kwargs | {"rating_min": -100.0, "rating_max": 100.0}
        model = load_trained_model(
            config.model_copy(update={"model_kwargs": unclipped}), weights
        )
        val = data["val_ratings"]
        predicted = model.predict(
            torch.from_numpy(val["userIdMapped"].to_numpy().astype(np.int64)),
            torch.from_numpy(val["movieIdMapped"].to_numpy().astype(np.int64)),
        ).numpy()
        mse = np.mean((predicted - val["rating"].to_numpy()) ** 2)
        assert mse == pytest.approx(config.best_val_loss, rel=1e-5)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"rank": 0}, "training.bayesian_fm.rank"),
        ({"n_iter": 0}, "training.bayesian_fm.n_iter"),
        ({"n_kept_samples": 0}, "training.bayesian_fm.n_kept_samples"),
        ({"n_iter": 10, "n_kept_samples": 11}, "n_kept_samples (11)"),
        ({"init_stdev": 0}, "training.bayesian_fm.init_stdev"),
        (
            {"rating_min": 5.0, "rating_max": 1.0},
            "'training.bayesian_fm': rating_min and rating_max are no longer "
            "parameters: the rating scale now comes from the data",
        ),
        ({"n_iters": 10}, "unknown key 'training.bayesian_fm.n_iters'"),
        ({"features": {"implict": True}}, "training.bayesian_fm.features.implict"),
    ],
)
def test_degenerate_or_unknown_bayesian_fm_parameters_are_rejected(values, key):
    with pytest.raises(
        ParameterError, match=key.replace("(", r"\(").replace(")", r"\)")
    ):
        parse(BayesianFMParameters, values, "training.bayesian_fm")


def test_the_exported_model_clips_to_the_data_sets_scale(data):
    """On whole stars 1..10 the exported biased MF predicts, and clips, on 1..10."""
    ten_stars = {
        name: data[name].with_columns(pl.col("rating") * 2)
        for name in ("train_ratings", "val_ratings")
    }
    options = BayesianFMParameters.model_validate(
        {**SHORT_CHAIN, "refit_on_train_val": False, "features": {"genres": False}}
    )
    training_data = TrainingData(
        train=ten_stars["train_ratings"],
        val=ten_stars["val_ratings"],
        n_users=_id_counts(data)[0],
        n_movies=_id_counts(data)[1],
        rating_scale=RatingScale(1.0, 10.0),
    )
    weights, config, _ = bayesian_fm.fit_variant("bayesian_fm", options, training_data)
    assert config.model_kwargs["rating_min"] == 1.0
    assert config.model_kwargs["rating_max"] == 10.0
    model = load_trained_model(config, weights)
    val = ten_stars["val_ratings"]
    predicted = model.predict(
        torch.from_numpy(val["userIdMapped"].to_numpy().astype(np.int64)),
        torch.from_numpy(val["movieIdMapped"].to_numpy().astype(np.int64)),
    )
    assert predicted.min() >= 1.0 and predicted.max() <= 10.0
    assert predicted.max() > 6.0
    for mean, clipped in ((40.0, 10.0), (-40.0, 1.0)):
        model.global_mean.fill_(mean)
        assert model.predict(torch.arange(4), torch.arange(4)).tolist() == [clipped] * 4


def test_myfms_own_bar_is_off_while_the_project_reports_the_sampling():
    """The project's Progress reports the samples (a bar on a terminal, lines with the
    time left elsewhere); myFM's tqdm is back once the sampling is over."""
    drawn = myfm.base.tqdm
    with without_myfms_own_bar():
        bar = myfm.base.tqdm(total=3, file=io.StringIO())
        assert bar.disable
        bar.close()
    assert myfm.base.tqdm is drawn
