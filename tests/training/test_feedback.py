"""Implicit feedback from ratings, shared by the rankers, and their one-row fit log."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from rating_prediction.training.feedback import implicit_feedback, log_fit

RATINGS = pl.DataFrame(
    {
        "userIdMapped": [0, 0, 1, 2],
        "movieIdMapped": [1, 2, 2, 0],
        "rating": [4.5, 2.0, 3.5, 5.0],
        "timestamp": [1, 2, 3, 4],
    },
    schema_overrides={"rating": pl.Float32},
)


@pytest.mark.parametrize(
    ("feedback", "min_rating", "expected"),
    [
        ("binary", None, [(0, 1, 1.0), (0, 2, 1.0), (1, 2, 1.0), (2, 0, 1.0)]),
        ("rating", None, [(0, 1, 4.5), (0, 2, 2.0), (1, 2, 3.5), (2, 0, 5.0)]),
        ("binary", 3.5, [(0, 1, 1.0), (1, 2, 1.0), (2, 0, 1.0)]),
        ("rating", 4.0, [(0, 1, 4.5), (2, 0, 5.0)]),
    ],
)
def test_each_rating_at_least_min_rating_is_one_interaction(
    feedback, min_rating, expected
):
    interactions = implicit_feedback(RATINGS, feedback, min_rating)
    assert interactions.columns == ["userIdMapped", "movieIdMapped", "value"]
    assert interactions["value"].dtype == pl.Float32
    assert interactions.rows() == expected


def test_the_fit_log_names_the_variant_its_settings_sizes_and_note(caplog):
    history = pl.DataFrame(
        {
            "settings": ["64 factors"],
            "n_items": [1234],
            "n_interactions": [56789],
            "fit_seconds": [2.25],
        }
    )
    with caplog.at_level(logging.INFO, logger="rating_prediction.training.feedback"):
        log_fit("als", history, "; val NDCG@10 0.2000")
    assert caplog.messages == [
        "als: 64 factors, 1,234 items, 56,789 interactions; 2.2 s; val NDCG@10 0.2000"
    ]
