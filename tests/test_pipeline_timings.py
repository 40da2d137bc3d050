"""benchmarks/pipeline_timings.py: Kedro's node log turned into time and memory per
pipeline."""

from __future__ import annotations

import importlib.util

import pytest

from tests.project import PROJECT_ROOT

spec = importlib.util.spec_from_file_location(
    "pipeline_timings", PROJECT_ROOT / "benchmarks" / "pipeline_timings.py"
)
timings = importlib.util.module_from_spec(spec)
spec.loader.exec_module(timings)

LOG = [
    "100.000 kedro.io.data_catalog INFO Loading data from params:ingestion (Memory)...",
    "100.500 rating_prediction.movielens.synthetic INFO Generating a synthetic release (...)",
    "130.000 kedro.runner.sequential_runner INFO Completed node: prepare_raw_release_node",
    "131.000 kedro.pipeline.node INFO Running node: train_model: train_model([a]) -> [b]",
    "150.000 kedro.runner.sequential_runner INFO Completed node: biased_mf.train_model",
    "160.000 kedro.runner.sequential_runner INFO Completed node: some_other_node",
]
ROWS = {
    "prepare_raw_release_node": "data_ingestion",
    "biased_mf.train_model": "training: biased_mf",
}


def test_each_node_gets_the_time_since_the_previous_completion_and_its_peak():
    memory = [(95.0, 100), (120.0, 5_000), (140.0, 7_000), (165.0, 300)]
    table = timings.per_row(timings.spans(LOG, 90.0, 170.0), ROWS, memory)
    assert table == {
        timings.STARTUP: (pytest.approx(10.0), 100),
        "data_ingestion": (pytest.approx(30.0), 5_000),
        timings.GENERATION: (pytest.approx(30.0), 5_000),
        "training: biased_mf": (pytest.approx(20.0), 7_000),
        "some_other_node": (pytest.approx(10.0), 0),
        timings.TEARDOWN: (pytest.approx(10.0), 300),
    }
    printed = timings.time_table(table, wall=80.0)
    assert "| training: biased_mf | 20.0 | 25% | 0.0 |" in printed
    assert printed.splitlines()[-1] == "| total | 80.0 | 100% | |"


def test_every_node_of_the_default_run_has_its_pipeline_row():
    rows = timings.node_pipelines()
    assert rows["clean_ratings_node"] == "data_ingestion"
    assert rows["bayesian_fm.train_model"] == "training: bayesian_fm"
    assert rows["inner_sigmoid.rank_with_model_node"] == "evaluation"
    assert rows["recommend_for_all_users_node"] == "inference"
    assert set(rows.values()) == {
        "data_ingestion",
        "data_processing",
        "training: inner_sigmoid",
        "training: biased_mf",
        "training: bayesian_fm",
        "training: ease",
        "training: als",
        "training: bpr",
        "evaluation",
        "reporting",
        "inference",
    }
