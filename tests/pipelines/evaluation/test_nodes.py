import mlflow
import numpy as np
import polars as pl
import pytest
import torch
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.evaluation.metrics import regression_metrics
from rating_prediction.models.baselines import fit_mean_baseline
from rating_prediction.models.config import load_trained_model
from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.evaluation.nodes import (
    compute_split_metrics,
    fit_bias_baseline,
    fit_bias_baseline_on_train_val,
    fit_mean_baseline_on_train_val,
    gather_metrics,
    predict_with_baseline,
    predict_with_model,
    score_with_baseline,
    score_with_model,
)
from tests.fakes import ALL_ENTRIES, RATING_VARIANTS, bias_splits, fake_trained_model

PREDICTION_COLUMNS = ["userId", "movieId", "rating", "prediction"]
# The rating_scale dataset as ingestion records it for MovieLens.
SCALE = MOVIELENS_SCALE.to_dict()


def evaluation(batch_size: int = 1_000_000, **bias_baseline: object) -> dict:
    """The ``evaluation`` parameter block, with Surprise's defaults unless overridden."""
    return {
        "prediction_batch_size": batch_size,
        "bias_baseline": {
            "reg_user": 15,
            "reg_movie": 10,
            "n_epochs": 10,
            **bias_baseline,
        },
    }


@pytest.fixture(scope="module")
def splits():
    return bias_splits()


@pytest.mark.parametrize("variant", RATING_VARIANTS)
def test_predict_with_model_in_small_batches_matches_one_pass(variant, splits):
    config, weights = fake_trained_model(variant)
    test = splits["test"]
    predictions = predict_with_model(config, weights, test, evaluation(batch_size=7))

    assert predictions.columns == PREDICTION_COLUMNS
    assert predictions["prediction"].dtype == pl.Float32
    assert predictions.select("userId", "movieId", "rating").equals(
        test.select("userId", "movieId", "rating")
    )
    model = load_trained_model(config, weights)
    expected = model.predict(
        torch.tensor(test["userIdMapped"].to_list()),
        torch.tensor(test["movieIdMapped"].to_list()),
    ).numpy()
    np.testing.assert_allclose(
        predictions["prediction"].to_numpy(), expected, rtol=1e-6
    )
    assert predictions["prediction"].is_between(0.5, 5.0).all()


def test_predict_with_model_rejects_a_non_positive_batch_size(splits):
    config, weights = fake_trained_model("inner_sigmoid")
    with pytest.raises(
        ParameterError, match=r"'evaluation\.prediction_batch_size': .*greater than"
    ):
        predict_with_model(config, weights, splits["test"], evaluation(batch_size=0))


@pytest.mark.parametrize(
    ("setting", "value"), [("n_epochs", 0), ("reg_user", -1), ("reg_movie", -1)]
)
def test_fit_bias_baseline_rejects_degenerate_settings_naming_them(
    splits, setting, value
):
    with pytest.raises(
        ParameterError, match=rf"'evaluation\.bias_baseline\.{setting}'"
    ):
        fit_bias_baseline(splits["train"], evaluation(**{setting: value}), SCALE)


def test_predict_with_baseline_keeps_the_rows_in_order(splits):
    baseline = fit_mean_baseline(splits["train"])
    predictions = predict_with_baseline(baseline, splits["val"])
    assert predictions.columns == PREDICTION_COLUMNS
    assert predictions["rating"].equals(splits["val"]["rating"])
    assert predictions["prediction"].to_list() == pytest.approx(
        [baseline.global_mean] * splits["val"].height
    )


def test_compute_split_metrics_scores_every_split():
    perfect = {"mse": 0.0, "rmse": 0.0, "mae": 0.0}
    off_by_one = {"mse": 1.0, "rmse": 1.0, "mae": 1.0}
    test = pl.DataFrame({"rating": [1.0, 2.0], "prediction": [1.0, 4.0]})
    metrics = compute_split_metrics(perfect, off_by_one, test)
    assert list(metrics) == ["train", "val", "test"]
    assert metrics["train"] == perfect
    assert metrics["val"] == off_by_one
    assert metrics["test"] == {"mse": 2.0, "rmse": 2.0**0.5, "mae": 1.0}


@pytest.mark.parametrize("batch_size", [1, 7, 1_000_000])
@pytest.mark.parametrize("variant", RATING_VARIANTS)
def test_model_scored_in_batches_equals_its_unbatched_metrics(
    variant, splits, batch_size
):
    config, weights = fake_trained_model(variant)
    train = splits["train"]
    whole = predict_with_model(config, weights, train, evaluation())
    expected = regression_metrics(whole["rating"], whole["prediction"])
    scored = score_with_model(config, weights, train, evaluation(batch_size))
    # float32 predictions may differ in the last bit with the batch's shape.
    assert scored == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("batch_size", [1, 5, 1_000_000])
def test_baseline_scored_in_batches_equals_its_unbatched_metrics(splits, batch_size):
    baseline = fit_bias_baseline(splits["train"], evaluation(), SCALE)
    whole = predict_with_baseline(baseline, splits["val"])
    expected = regression_metrics(whole["rating"], whole["prediction"])
    scored = score_with_baseline(baseline, splits["val"], evaluation(batch_size))
    assert scored == pytest.approx(expected, rel=1e-9)


def test_train_val_baselines_are_fitted_on_both_splits(splits):
    train, val = splits["train"], splits["val"]
    both = pl.concat([train, val])
    fitted = fit_bias_baseline_on_train_val(train, val, evaluation(), SCALE)
    expected = fit_bias_baseline(both, evaluation(), SCALE)
    assert fitted.predict(splits["test"]).equals(expected.predict(splits["test"]))
    mean = fit_mean_baseline_on_train_val(train, val, SCALE)
    assert mean.global_mean == pytest.approx(fit_mean_baseline(both).global_mean)


def test_scoring_an_empty_split_is_refused(splits):
    baseline = fit_mean_baseline(splits["train"])
    with pytest.raises(ValueError, match="empty split"):
        score_with_baseline(baseline, splits["val"].clear(), evaluation())


def test_baseline_predicts_zero_bias_for_ids_it_has_not_seen(splits):
    baseline = fit_bias_baseline(splits["train"], evaluation(), SCALE)
    unseen = splits["val"].with_columns(
        userIdMapped=pl.lit(10**6, dtype=pl.Int32),
        movieIdMapped=pl.lit(10**6, dtype=pl.Int32),
    )
    assert baseline.predict(unseen).to_list() == pytest.approx(
        [baseline.global_mean] * unseen.height
    )


def _split_metrics(value: float) -> dict[str, dict[str, float]]:
    return {
        split: {"mse": value**2, "rmse": value, "mae": value}
        for split in ("train", "val", "test")
    }


def test_gather_metrics_keeps_entries_in_order_and_flattens_them_for_mlflow():
    metrics, flat = gather_metrics(
        **{
            entry: _split_metrics(0.9 + index)
            for index, entry in enumerate(ALL_ENTRIES)
        }
    )
    assert list(metrics) == ALL_ENTRIES
    assert metrics["bias_baseline"]["test"]["rmse"] == 0.9 + ALL_ENTRIES.index(
        "bias_baseline"
    )
    assert len(flat) == len(ALL_ENTRIES) * 3 * 3
    assert flat["inner_sigmoid.test.rmse"] == {"value": 0.9, "step": 0}
    assert flat["mean_baseline.train.mse"] == {
        "value": pytest.approx((0.9 + ALL_ENTRIES.index("mean_baseline")) ** 2),
        "step": 0,
    }


def test_flattened_metrics_are_logged_by_the_mlflow_dataset(tmp_path):
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        # An explicit experiment: one left active by an earlier test names an id this
        # new store lacks.
        experiment_id = mlflow.create_experiment("metrics")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            _, flat = gather_metrics(biased_mf=_split_metrics(0.8))
            MlflowMetricsHistoryDataset().save(flat)
        logged = mlflow.get_run(run.info.run_id).data.metrics
    finally:
        mlflow.set_tracking_uri(previous_uri)
    assert logged["biased_mf.test.rmse"] == pytest.approx(0.8)
    assert len(logged) == 9


def test_baseline_nodes_clip_to_the_recorded_rating_scale(splits):
    narrow = {"min": 3.0, "max": 3.5, "inferred": True}
    fitted = [
        fit_bias_baseline(splits["train"], evaluation(), narrow),
        fit_bias_baseline_on_train_val(
            splits["train"], splits["val"], evaluation(), narrow
        ),
    ]
    for baseline in fitted:
        predictions = predict_with_baseline(baseline, splits["test"])["prediction"]
        assert predictions.min() == 3.0 and predictions.max() == 3.5
    unclipped = fit_bias_baseline(splits["train"], evaluation(), SCALE)
    predictions = unclipped.predict(splits["test"])
    assert predictions.min() < 3.0 and predictions.max() > 3.5
