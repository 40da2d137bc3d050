"""The project's hooks that do not need a whole run to be tested."""

from __future__ import annotations

import logging

import pytest
from kedro.pipeline import Node, Pipeline

import rating_prediction.hooks as hooks_module
from rating_prediction.hooks import (
    NodeTimingHooks,
    RefusedParameters,
    check_served_variant,
)
from rating_prediction.parameters import ParameterError
from rating_prediction.runtime.console import ConsoleFilter
from tests.project import refused_kedro_run


def identity(value):
    return value


def test_a_line_per_node_and_quick_nodes_counted_in_one_console_line(
    caplog, monkeypatch
):
    nodes = [
        Node(identity, "a", "b", name="first_node"),
        Node(identity, "b", "c", name="slow_node"),
        Node(identity, "c", "d", name="third_node"),
    ]
    # Each node's start and end: the second takes 2 s, the others 10 ms.
    clock = iter([0.0, 0.01, 1.0, 3.0, 4.0, 4.01])
    monkeypatch.setattr(hooks_module.time, "perf_counter", lambda: next(clock))
    hooks = NodeTimingHooks()
    hooks.before_pipeline_run(Pipeline(nodes))
    with caplog.at_level(logging.INFO, logger="rating_prediction.hooks"):
        for node in nodes:
            hooks.before_node_run(node)
            hooks.after_node_run(node)
        hooks.after_pipeline_run()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "[1/3] first_node: 0.0 s",
        "[2/3] slow_node: 2.0 s",
        "[3/3] third_node: 0.0 s",
        "2 of 3 nodes took under 0.1 s each (0.0 s in all); info.log lists every "
        "node with its time.",
    ]
    shown = [ConsoleFilter().filter(record) for record in caplog.records]
    assert shown == [False, True, False, True]


@pytest.mark.parametrize("ranker", ["ease", "als", "bpr"])
def test_a_ranker_as_served_variant_is_refused_before_any_node(ranker):
    check_served_variant("best")
    check_served_variant("biased_mf")
    with pytest.raises(
        ParameterError, match=f"'inference.served_variant': .*'{ranker}'"
    ):
        check_served_variant(ranker)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            "ingestion.dataset=my_ratings",
            "Error: 'ingestion.dataset': Unknown MovieLens release 'my_ratings'; "
            "valid: synthetic,",
        ),
        ("inference.served_ranker=biased_mf", "Error: 'inference.served_ranker': "),
    ],
)
def test_kedro_run_refuses_a_bad_parameter_in_a_line_before_any_run(
    project_copy, params, message
):
    """The message, not a page of traceback; no node ran and no MLflow run opened."""
    printed = refused_kedro_run(project_copy, "--params", params)
    assert printed.startswith(message), printed
    assert len(printed.splitlines()) <= 2
    assert not (project_copy / "data" / "02_intermediate").exists()


def test_a_refused_parameter_is_still_a_parameter_error_to_python_callers():
    refused = RefusedParameters("'x': wrong")
    assert isinstance(refused, ParameterError) and isinstance(refused, ValueError)
    assert str(refused) == "'x': wrong"
