"""The ``users`` table from the release's users file, or from the rated users when it
ships none; its lineage."""

from __future__ import annotations

import json
import logging
from typing import Any

import polars as pl
import pytest

from rating_prediction.data.schema import RATINGS_SCHEMA, USERS_SCHEMA
from rating_prediction.movielens import parse_u_user
from rating_prediction.pipelines.data_ingestion.nodes import (
    check_ratings,
    clean_users,
)
from rating_prediction.runtime.lineage import StaleArtifactError
from tests.ml100k import N_USERS, ml_100k_user, write_ml_100k
from tests.movielens.fixtures import USERS, users_file
from tests.project import run_project


def profile_of(ratings_users: list[int]) -> dict[str, Any]:
    """``ratings_profile`` of ratings by ``ratings_users`` (one user per rating)."""
    rows = [(user, 10, 4.0, 0) for user in ratings_users]
    return check_ratings(pl.LazyFrame(rows, schema=RATINGS_SCHEMA, orient="row"))


def test_without_a_users_file_every_rated_user_once_with_nulls():
    users = clean_users(pl.DataFrame(schema=USERS_SCHEMA), profile_of([5, 2, 5, 9]))
    assert users.schema == USERS_SCHEMA
    assert users.rows() == [(user, None, None, None, None) for user in (2, 5, 9)]


def test_without_a_users_file_ids_keep_the_ratings_type():
    # A file of your own with text ids: its profile's ids are text.
    profile = {"user_ids": pl.Series(["b", "a"], dtype=pl.String)}
    users = clean_users(pl.DataFrame(schema=USERS_SCHEMA), profile)
    assert users.schema == pl.Schema({**USERS_SCHEMA, "userId": pl.String()})
    assert users["userId"].to_list() == ["a", "b"]


def test_a_users_file_gives_its_rows_sorted_and_counts_rated_users_it_lacks(caplog):
    raw = parse_u_user(users_file("u.user", USERS["u.user"][::-1]))
    with caplog.at_level(logging.WARNING):
        users = clean_users(raw, profile_of([1, 2, 4, 4]))
    # Every user of the file (3 has no rating); rated user 4 is not in it.
    assert users.rows() == USERS["u.user"]
    assert "1 rated user(s) are not in the release's users file" in caplog.text


@pytest.mark.slow
def test_the_users_table_is_covered_by_lineage(project_copy):
    """Written with its lineage by ``kedro run``; changed by hand, training refuses it
    and says which pipeline rebuilds it."""
    write_ml_100k(project_copy / "data" / "01_raw")
    params = {"ingestion": {"dataset": "ml-100k"}, "processing": {"top_n_movies": None}}
    run_project(project_copy, params, ["data_ingestion", "data_processing"])
    users_path = project_copy / "data" / "02_intermediate" / "users.parquet"
    users = pl.read_parquet(users_path)
    assert users.rows() == [ml_100k_user(user) for user in range(1, N_USERS + 1)]
    manifest = json.loads((project_copy / "data" / "lineage.json").read_text())
    assert manifest["datasets"]["users"]["node"] == "clean_users_node"
    ancestry = manifest["datasets"]["users"]["ancestry"]
    assert {"read_users_node", "check_ratings_node"} <= ancestry.keys()

    users.with_columns(pl.lit("F").alias("gender")).write_parquet(users_path)
    with pytest.raises(StaleArtifactError) as error:
        run_project(project_copy, params, ["training"])
    assert "'users'" in str(error.value)
    assert "kedro run --pipelines data_ingestion" in str(error.value)
