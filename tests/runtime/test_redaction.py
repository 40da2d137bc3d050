"""Values made safe to record: no URL credentials, no absolute paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from rating_prediction.runtime.redaction import (
    OUTSIDE_PROJECT,
    redact,
    redact_text,
    url_without_credentials,
)

PROJECT = Path("/srv/alice/rating-prediction")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://alice:pw@example.org/movielens", "https://***@example.org/movielens"),
        ("s3://KEY:SECRET@bucket/data", "s3://***@bucket/data"),
        ("http://token@host:8080/x", "http://***@host:8080/x"),
        ("https://host/x?sig=abc&v=1#top", "https://host/x?sig=***&v=***#top"),
        ("http://[::1", "http://***"),
        (
            "https://files.grouplens.org/datasets/movielens",
            "https://files.grouplens.org/datasets/movielens",
        ),
    ],
    ids=["user-password", "s3", "token-and-port", "query", "malformed", "plain"],
)
def test_urls_lose_their_credentials(text, expected):
    assert redact_text(text, PROJECT) == expected
    assert url_without_credentials(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{PROJECT}/data/01_raw", "data/01_raw"),
        (f"{PROJECT}/data/../conf", "conf"),
        (str(PROJECT), "."),
        ("/srv/alice/movielens", OUTSIDE_PROJECT),
        ("/srv/alice/rating-prediction-old/data", OUTSIDE_PROJECT),
        ("~/movielens", OUTSIDE_PROJECT),
        ("~bob/movielens", OUTSIDE_PROJECT),
        ("C:\\Users\\alice\\movielens", OUTSIDE_PROJECT),
        ("data/01_raw", "data/01_raw"),
        ("../shared/data", "../shared/data"),
        (f"file://{PROJECT}/mlruns", "file:mlruns"),
        ("sqlite:////srv/alice/mlflow.db", f"sqlite:{OUTSIDE_PROJECT}"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ],
)
def test_absolute_paths_become_relative_or_a_placeholder(text, expected):
    assert redact_text(text, PROJECT) == expected


def test_paths_and_urls_inside_longer_text_are_found():
    text = (
        f"raw_dir={PROJECT}/data,base_url='ftp://a:b@mirror/x' from /opt/venv/bin/kedro"
    )
    assert redact_text(text, PROJECT) == (
        f"raw_dir=data,base_url='ftp://***@mirror/x' from {OUTSIDE_PROJECT}"
    )


@pytest.mark.parametrize(
    "text", ["0.5/2", "ratings/s", "a / b", "kedro run --pipeline=__default__"]
)
def test_text_without_paths_is_unchanged(text):
    assert redact_text(text, PROJECT) == text


def test_nested_values_are_redacted_and_other_types_kept():
    value = {
        "raw_dir": Path("/mnt/data"),
        "list": [f"{PROJECT}/data", ("https://u:p@h/x", 3)],
        "number": 2.5,
        "flag": True,
        "none": None,
    }
    assert redact(value, PROJECT) == {
        "raw_dir": OUTSIDE_PROJECT,
        "list": ["data", ("https://***@h/x", 3)],
        "number": 2.5,
        "flag": True,
        "none": None,
    }


def test_without_a_project_every_absolute_path_is_outside():
    assert redact_text(f"{PROJECT}/data", None) == OUTSIDE_PROJECT
