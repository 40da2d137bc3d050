"""The example requests of the ``inference`` parameters: each bad value is refused with
a message naming the parameter and saying what to write instead."""

import re

import pytest

from rating_prediction.parameters import (
    MAX_PARAMETER_REQUESTS,
    InferenceParameters,
    ParameterError,
    parse,
)
from tests.serving.fixtures import inference_parameters


def refusal(**changes) -> str:
    with pytest.raises(ParameterError) as error:
        parse(InferenceParameters, inference_parameters(**changes), "inference")
    return str(error.value)


def test_pairs_null():
    assert (
        "- 'inference.pairs': must be a list of [userId, movieId] pairs (original "
        "MovieLens ids), e.g. [[1, 31]], or [] for none; got None"
    ) in refusal(pairs=None)


def test_user_ids_not_a_list():
    assert (
        "- 'inference.recommend.user_ids': must be a list of userIds (original "
        "MovieLens ids), e.g. [1, 2], or [] for none; got 5"
    ) in refusal(recommend={"user_ids": 5})


def test_a_pair_id_beyond_int64():
    message = refusal(pairs=[[10, 1], [2**63, 1]])
    assert re.search(
        r"- 'inference\.pairs\.1\.0': must be an original MovieLens id, an integer in "
        r"0\.\.2147483647 .*got 9223372036854775808: fix or remove it",
        message,
    )


@pytest.mark.parametrize(
    ("changes", "key", "entry"),
    [
        ({"pairs": [[1, 2]] * 101}, "inference.pairs", "pair_requests"),
        (
            {"recommend": {"user_ids": list(range(101))}},
            "inference.recommend.user_ids",
            "user_requests",
        ),
    ],
)
def test_more_than_a_few_requests_belong_in_a_file(changes, key, entry):
    assert MAX_PARAMETER_REQUESTS == 100
    message = refusal(**changes)
    assert f"'{key}': holds 101 " in message
    assert f"Put them in a request file instead: the catalog entry {entry}" in message


def test_a_hundred_pairs_are_fine():
    pairs = [[user, 1] for user in range(100)]
    parsed = parse(InferenceParameters, inference_parameters(pairs=pairs), "inference")
    assert len(parsed.pairs) == 100


def test_users_file_moved_to_the_catalog():
    message = refusal(batch_recommend={"users_file": "users.csv"})
    assert (
        "'inference.batch_recommend': 'users_file' is no longer a parameter: the users "
        "to recommend for come from the catalog entry user_requests"
    ) in message
