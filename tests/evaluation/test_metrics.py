import polars as pl
import pytest

from rating_prediction.evaluation.metrics import grouped_rmse, regression_metrics


def test_regression_metrics_match_hand_computed_values():
    ratings = pl.Series([1.0, 2.0, 3.0, 4.0], dtype=pl.Float32)
    predictions = pl.Series([1.5, 2.0, 2.0, 5.0], dtype=pl.Float32)
    # errors 0.5, 0, -1, 1
    metrics = regression_metrics(ratings, predictions)
    assert metrics == pytest.approx({"mse": 0.5625, "rmse": 0.75, "mae": 0.625})


def test_regression_metrics_reject_an_empty_split():
    with pytest.raises(ValueError, match="empty"):
        regression_metrics(
            pl.Series([], dtype=pl.Float32), pl.Series([], dtype=pl.Float32)
        )


def test_grouped_rmse_per_value():
    predictions = pl.DataFrame(
        {"rating": [1.0, 1.0, 4.0], "prediction": [2.0, 0.0, 4.0]}
    )
    result = grouped_rmse(predictions, "rating")
    assert result["rating"].to_list() == [1.0, 4.0]
    assert result["rmse"].to_list() == pytest.approx([1.0, 0.0])
    assert result["n_ratings"].to_list() == [2, 1]
