"""ml-100k's own split files (u1..u5, ua, ub) through the ingestion node, on releases
the tests write in ml-100k's format."""

from __future__ import annotations

import pytest

from rating_prediction.movielens import ReleaseSource, locate_release
from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.data_ingestion.nodes import read_predefined_folds
from tests.ml100k import write_ml_100k

RANDOM = {
    "top_n_movies": None,
    "split": {"strategy": "random", "fractions": [0.7, 0.2, 0.1], "seed": 0},
}


def predefined(fold: str = "u1") -> dict:
    return {
        **RANDOM,
        "split": {**RANDOM["split"], "strategy": "predefined", "fold": fold},
    }


def test_node_reads_the_folds_the_parameters_use(tmp_path):
    source = locate_release(write_ml_100k(tmp_path).parent, "ml-100k")
    assert read_predefined_folds(source, RANDOM, {}).is_empty()
    only_u2 = read_predefined_folds(source, predefined("u2"), {})
    assert only_u2["fold"].unique().to_list() == ["u2"]
    cv = read_predefined_folds(source, RANDOM, {"scheme": "predefined"})
    assert sorted(cv["fold"].unique()) == ["u1", "u2", "u3", "u4", "u5"]


def test_predefined_split_of_a_release_without_split_files_is_a_clear_error(tmp_path):
    source = ReleaseSource("ml-latest-small", tmp_path)
    with pytest.raises(
        ParameterError,
        match=r"'processing\.split\.strategy' is 'predefined' but the release "
        r"'ml-latest-small' \(ingestion\.dataset\) ships no split files",
    ):
        read_predefined_folds(source, predefined(), {})
    with pytest.raises(ParameterError, match=r"'cross_validation\.scheme'"):
        read_predefined_folds(source, RANDOM, {"scheme": "predefined"})
    ml_100k = ReleaseSource("ml-100k", tmp_path)
    with pytest.raises(ParameterError, match=r"no fold\(s\) \['u7'\]"):
        read_predefined_folds(ml_100k, predefined("u7"), {})
