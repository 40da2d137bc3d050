"""The registry: every pipeline by name, and `__default__` as all of them."""

import inspect

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
# Run only when named: `kedro run --pipelines tuning` / `cross_validation`.
ON_DEMAND_PIPELINES = {"tuning", "cross_validation"}


@pytest.fixture(scope="module")
def pipelines():
    configure_project("rating_prediction")
    return register_pipelines()


def test_every_pipeline_is_registered(pipelines):
    assert set(pipelines) == PIPELINE_NAMES | ON_DEMAND_PIPELINES | {"__default__"}


def test_default_runs_every_pipeline_but_the_on_demand_ones(pipelines):
    default_nodes = set(pipelines["__default__"].nodes)
    for name in PIPELINE_NAMES:
        assert set(pipelines[name].nodes) <= default_nodes, name
    for name in ON_DEMAND_PIPELINES:
        assert not set(pipelines[name].nodes) <= default_nodes, name


def test_default_is_a_plain_pipeline(pipelines):
    # The MLflow model is logged by ServingHooks, not by a kedro-mlflow PipelineML.
    assert not isinstance(pipelines["__default__"], PipelineML)


def test_served_model_is_built_by_the_default_run(pipelines):
    assert "served_model" in pipelines["__default__"].all_outputs()


def test_a_run_of_some_pipelines_gets_no_default(monkeypatch):
    # `kedro run --pipelines inference` loads only that pipeline.
    monkeypatch.setattr(
        pipeline_registry,
        "find_pipelines",
        lambda raise_errors, pipelines_to_find: {"inference": create_pipeline()},
    )
    assert set(register_pipelines()) == {"inference"}


def test_kedro_viz_can_show_the_code_of_every_node(pipelines):
    """kedro-viz shows a node's code only for a plain function (following
    ``__wrapped__``): not for a ``functools.partial`` or a callable object."""
    every_node = [node for name in pipelines for node in pipelines[name].nodes]
    for node in every_node:
        assert inspect.isfunction(node.func), node.name
        source = inspect.getsource(getattr(node.func, "__wrapped__", node.func))
        assert source.lstrip().startswith("def "), node.name
