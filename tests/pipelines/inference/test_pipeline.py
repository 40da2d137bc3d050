"""The inference pipeline run end to end on in-memory data."""

import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.datasets import RequestFileDataset
from rating_prediction.models.variants import VARIANTS
from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.inference import create_pipeline
from tests.serving.fixtures import (
    GLOBAL_MEAN,
    MOVIE_BIAS,
    RANKER_TRAINING,
    inference_parameters,
)

# Catalog entry -> fixture (tests/serving/fixtures.py) holding its data (the variants'
# configs and weights come from `trained_by_variant`).
INPUT_FIXTURES = {
    "user_mapping": "user_mapping",
    "movie_mapping": "movie_mapping",
    "train_ratings": "train_ratings",
    "val_ratings": "val_ratings",
    "test_ratings": "test_ratings",
    "movies": "movies",
}


@pytest.fixture
def catalog(request, trained_by_variant, tmp_path) -> DataCatalog:
    """Every input in memory; no request files (optional entries, absent files)."""
    catalog = DataCatalog()
    for name, fixture in INPUT_FIXTURES.items():
        catalog[name] = request.getfixturevalue(fixture)
    for variant, (config, weights) in trained_by_variant.items():
        catalog[f"{variant}.model_config"] = config
        catalog[f"{variant}.model_weights"] = weights
    for name, columns in REQUEST_FILES.items():
        catalog[name] = RequestFileDataset(
            filepath=str(tmp_path / "requests" / f"{name}.parquet"),
            columns=columns,
            optional=True,
        )
    catalog["params:inference"] = inference_parameters()
    catalog["params:training"] = RANKER_TRAINING
    return catalog


REQUEST_FILES = {"pair_requests": ["userId", "movieId"], "user_requests": ["userId"]}


def test_nodes_and_their_parameters():
    pipeline = create_pipeline()
    # Node names stay stable (`kedro run --nodes`); two nodes are library functions.
    assert {node.name: node.func.__name__ for node in pipeline.nodes} == {
        "select_trained_model_node": "select_trained_model",
        "build_served_model_node": "assemble_served_model",
        "pairs_from_parameters_node": "pairs_from_parameters",
        "predict_pair_ratings_node": "predict_pairs",
        "predict_pair_requests_node": "predict_pair_requests",
        "collect_rated_pairs_node": "collect_rated_pairs",
        "recommend_movies_node": "recommend_movies",
        "split_fingerprint_node": "split_fingerprint",
        "find_similar_movies_node": "find_similar_movies",
        "recommend_for_new_user_node": "recommend_for_new_user",
        "recommend_for_all_users_node": "recommend_for_all_users",
        "popularity_weight_node": "popularity_weight_from_parameters",
        "select_trained_ranker_node": "select_trained_ranker",
        # Every rating model and every ranker is offered.
        **{
            f"{variant}.offer_trained_model_node": "offer_trained_model"
            for variant in VARIANTS
        },
    }
    # The nodes take the whole block and parse it; no leaf is an input of its own
    # (the rankers' feedback settings come from the training blocks).
    assert {name for name in pipeline.inputs() if name.startswith("params:")} == {
        "params:inference",
        "params:training",
    }


def test_inference_pipeline_predicts_pairs_and_recommends(catalog):
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    assert set(outputs) == {
        "pair_predictions",
        "pair_request_predictions",
        "recommendations",
        "similar_movies",
        "new_user_recommendations",
        "all_user_recommendations",
    }
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


def test_the_model_is_built_once_per_run(catalog, model_builds):
    SequentialRunner().run(create_pipeline(), catalog)
    # Pair predictions share the served bundle's rating model, recommendations its
    # ranker: each is built once.
    assert sorted(model_builds) == ["biased_mf", "ease"]


def test_a_bad_parameter_stops_the_run_naming_its_key(catalog):
    catalog["params:inference"] = inference_parameters(recommend={"top_k": 0})
    with pytest.raises(ParameterError, match="'inference.recommend.top_k'"):
        SequentialRunner().run(create_pipeline(), catalog)
