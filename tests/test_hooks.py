"""The project's hooks that do not need a whole run to be tested."""

from __future__ import annotations

import logging

import pytest
from kedro.pipeline import Node, Pipeline

from rating_prediction.hooks import NodeTimingHooks, check_served_variant
from rating_prediction.parameters import ParameterError


def identity(value):
    return value


def test_one_line_per_node_with_its_place_and_time(caplog):
    nodes = [
        Node(identity, "a", "b", name="first_node"),
        Node(identity, "b", "c", name="second_node"),
    ]
    hooks = NodeTimingHooks()
    hooks.before_pipeline_run(Pipeline(nodes))
    with caplog.at_level(logging.INFO, logger="rating_prediction.hooks"):
        for node in nodes:
            hooks.before_node_run(node)
            hooks.after_node_run(node)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.rsplit(":", 1)[0] for line in lines] == [
        "[1/2] first_node",
        "[2/2] second_node",
    ]
    assert all(line.endswith(" s") for line in lines)


@pytest.mark.parametrize("ranker", ["ease", "als", "bpr"])
def test_a_ranker_as_served_variant_is_refused_before_any_node(ranker):
    check_served_variant("best")
    check_served_variant("biased_mf")
    with pytest.raises(
        ParameterError, match=f"'inference.served_variant': .*'{ranker}'"
    ):
        check_served_variant(ranker)
