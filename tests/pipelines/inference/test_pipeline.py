"""The inference pipeline run end to end on in-memory data."""

import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.pipelines.inference import (
    create_pipeline,
    create_serving_pipeline,
)

from .conftest import GLOBAL_MEAN, MOVIE_BIAS

# Catalog entry -> conftest fixture holding its data.
INPUT_FIXTURES = {
    "inner_sigmoid.model_config": "inner_sigmoid_config",
    "inner_sigmoid.model_weights": "inner_sigmoid_weights",
    "biased_mf.model_config": "biased_config",
    "biased_mf.model_weights": "biased_weights",
    "user_mapping": "user_mapping",
    "movie_mapping": "movie_mapping",
    "train_ratings": "train_ratings",
    "val_ratings": "val_ratings",
    "test_ratings": "test_ratings",
    "movies": "movies",
}
PARAMETERS = {
    "params:inference.served_variant": "best",
    "params:inference.pairs": [[10, 1], [20, 2], [999, 1]],
    "params:inference.recommend.user_ids": [10, 30],
    "params:inference.recommend.top_k": 3,
}


@pytest.fixture
def catalog(request) -> DataCatalog:
    catalog = DataCatalog()
    for name, fixture in INPUT_FIXTURES.items():
        catalog[name] = request.getfixturevalue(fixture)
    for name, value in PARAMETERS.items():
        catalog[name] = value
    return catalog


def test_inference_pipeline_predicts_pairs_and_recommends(catalog):
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    assert set(outputs) == {"pair_predictions", "recommendations"}
    predictions = outputs["pair_predictions"].load()
    assert predictions["known_user"].to_list() == [True, True, False]
    # `best` serves biased_mf, whose unknown-user fallback is mean + movie bias.
    assert predictions["prediction"][2] == pytest.approx(GLOBAL_MEAN + MOVIE_BIAS[0])
    recommendations = outputs["recommendations"].load()
    assert recommendations.columns[:5] == [
        "userId",
        "rank",
        "movieId",
        "title",
        "prediction",
    ]
    assert set(recommendations["userId"]) == {10, 30}


def test_serving_pipeline_has_one_output():
    serving = create_serving_pipeline()
    assert serving.outputs() == {"pair_predictions_output"}
    assert serving.inputs() == {"inference_request", "served_model"}
