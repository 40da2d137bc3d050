"""The checks of the parameters against the release registry, made before any node
runs (the hook that parses the parameters calls them)."""

import pytest

from rating_prediction.movielens.releases import check_release_parameters
from rating_prediction.parameters import ParameterError, ProjectParameters, parse
from tests.parameters.test_project import project_parameters


def _parsed(**changes) -> ProjectParameters:
    parameters = project_parameters()
    for block, values in changes.items():
        parameters[block] = parameters[block] | values
    return parse(ProjectParameters, parameters, "")


def test_the_default_parameters_pass():
    check_release_parameters(_parsed())


def test_an_unknown_release_is_refused_naming_the_key_and_the_releases():
    with pytest.raises(
        ParameterError,
        match=r"'ingestion.dataset': Unknown MovieLens release 'my_ratings'; "
        r"valid: synthetic, ml-100k",
    ):
        check_release_parameters(_parsed(ingestion={"dataset": "my_ratings"}))


def test_a_predefined_split_of_a_release_without_folds_is_refused():
    split = project_parameters()["processing"]["split"] | {"strategy": "predefined"}
    with pytest.raises(ParameterError, match="'processing.split.strategy'"):
        check_release_parameters(_parsed(processing={"split": split}))


def test_a_fold_the_release_lacks_is_refused():
    split = project_parameters()["processing"]["split"] | {
        "strategy": "predefined",
        "fold": "u9",
    }
    with pytest.raises(ParameterError, match=r"has no fold\(s\) \['u9'\]"):
        check_release_parameters(
            _parsed(ingestion={"dataset": "ml-100k"}, processing={"split": split})
        )


def test_a_temporal_split_of_a_file_without_timestamps_is_refused():
    own_file = {
        "path": "data/01_raw/mine.csv",
        "columns": {"user": "u", "item": "i", "rating": "r"},
    }
    split = project_parameters()["processing"]["split"] | {"strategy": "temporal"}
    parameters = _parsed(
        ingestion={"dataset": "file", "file": own_file}, processing={"split": split}
    )
    with pytest.raises(ParameterError, match="your file has no timestamp"):
        check_release_parameters(parameters)
    timed = own_file | {"columns": {**own_file["columns"], "timestamp": "t"}}
    check_release_parameters(
        _parsed(
            ingestion={"dataset": "file", "file": timed}, processing={"split": split}
        )
    )
