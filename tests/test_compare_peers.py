"""benchmarks/compare_peers.py: the peers see the data the project's final models saw."""

from __future__ import annotations

import importlib.util

import polars as pl
import pytest

from tests.project import PROJECT_ROOT

spec = importlib.util.spec_from_file_location(
    "compare_peers", PROJECT_ROOT / "benchmarks" / "compare_peers.py"
)
compare_peers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_peers)

REFIT = {"refit_on_train_val": True}
NO_REFIT = {"refit_on_train_val": False}


@pytest.mark.parametrize(
    ("configs", "choice", "expected"),
    [
        ({"biased_mf": REFIT, "inner_sigmoid": NO_REFIT}, "auto", "train + val"),
        ({"biased_mf": NO_REFIT, "inner_sigmoid": NO_REFIT}, "auto", "train"),
        ({"mean_baseline": {}}, "auto", "train"),
        ({"biased_mf": REFIT}, "train", "train"),
        ({"biased_mf": NO_REFIT}, "train+val", "train + val"),
    ],
)
def test_peers_are_fitted_on_the_final_models_data(configs, choice, expected):
    assert compare_peers.peer_fit_data(configs, choice) == expected


def test_fit_frame_and_entry_fit_data_name_the_data():
    splits = {
        name: pl.DataFrame({"rating": [float(i)] * size})
        for i, (name, size) in enumerate((("train", 3), ("val", 2), ("test", 1)))
    }
    assert compare_peers.fit_frame(splits, "train").height == 3
    assert compare_peers.fit_frame(splits, "train + val").height == 5
    assert compare_peers.entry_fit_data("biased_mf", REFIT) == "train + val"
    assert compare_peers.entry_fit_data("inner_sigmoid", NO_REFIT) == "train"
    assert compare_peers.entry_fit_data("bias_baseline", {}) == "train"
    assert compare_peers.entry_fit_data("bias_baseline_train_val", {}) == "train + val"
    rows = compare_peers.project_rows(
        {
            "biased_mf": {"test": {"rmse": 0.9}},
            "bias_baseline": {"test": {"rmse": 1.0}},
        },
        {"biased_mf": REFIT | {"fit_seconds": 2.0}},
    )
    assert rows == [
        compare_peers.Row("project biased_mf", "train + val", 0.9, 2.0),
        compare_peers.Row("project bias_baseline", "train", 1.0, None),
    ]
