"""The registry: every pipeline by name, and `__default__` as the PipelineML."""

import pytest
from kedro.framework.project import configure_project
from kedro_mlflow.pipeline.pipeline_ml import PipelineML

from rating_prediction import pipeline_registry
from rating_prediction.pipeline_registry import register_pipelines
from rating_prediction.pipelines.inference import create_pipeline

PIPELINE_NAMES = {
    "data_ingestion",
    "data_processing",
    "training",
    "evaluation",
    "reporting",
    "inference",
}


@pytest.fixture(scope="module")
def pipelines():
    configure_project("rating_prediction")
    return register_pipelines()


def test_every_pipeline_is_registered(pipelines):
    assert set(pipelines) == PIPELINE_NAMES | {"__default__"}


def test_default_is_a_pipeline_ml_logging_the_model(pipelines):
    default = pipelines["__default__"]
    assert isinstance(default, PipelineML)
    assert default.log_model_kwargs["name"] == "model"
    assert default.input_name == "inference_request"
    assert default.inference.outputs() == {"pair_predictions_output"}


def test_default_runs_every_pipeline(pipelines):
    default_nodes = set(pipelines["__default__"].nodes)
    for name in PIPELINE_NAMES:
        assert set(pipelines[name].nodes) <= default_nodes, name


def test_served_model_is_built_by_the_default_run(pipelines):
    assert "served_model" in pipelines["__default__"].all_outputs()


def test_the_input_example_is_a_valid_request(pipelines):
    example = pipelines["__default__"].log_model_kwargs["input_example"]
    signature = pipelines["__default__"].log_model_kwargs["signature"]
    assert list(example.columns) == signature.inputs.input_names()
    assert all(dtype.kind == "i" for dtype in example.dtypes)


def test_a_run_of_some_pipelines_gets_no_default(monkeypatch):
    # `kedro run --pipelines inference` loads only that pipeline: there is no training
    # side to bind the model to, so no PipelineML either.
    monkeypatch.setattr(
        pipeline_registry,
        "find_pipelines",
        lambda raise_errors: {"inference": create_pipeline()},
    )
    assert set(register_pipelines()) == {"inference"}
