"""The ``inference`` parameters that moved to request files."""

import pytest

from rating_prediction.parameters import InferenceParameters, ParameterError, parse

from .conftest import inference_parameters


def refusal(**changes) -> str:
    with pytest.raises(ParameterError) as error:
        parse(InferenceParameters, inference_parameters(**changes), "inference")
    return str(error.value)


def test_users_file_moved_to_the_catalog():
    message = refusal(batch_recommend={"users_file": "users.csv"})
    assert (
        "'inference.batch_recommend': 'users_file' is no longer a parameter: the users "
        "to recommend for come from the catalog entry user_requests"
    ) in message
