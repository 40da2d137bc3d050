"""The data ingestion pipeline on a ratings file of the user's own, through the shipped
catalog entries: what a good file gives, and that a bad one leaves nothing written."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.data.schema import USERS_SCHEMA
from rating_prediction.data.splitting import temporal_split_labels
from rating_prediction.movielens import MovieLensError
from rating_prediction.movielens.own_file import ID_SAMPLE_ROWS
from rating_prediction.pipelines.data_ingestion import create_pipeline
from tests.pipelines.data_ingestion.test_pipeline import (
    NO_PREDEFINED_SPLIT,
    project_config,  # noqa: F401 (a fixture)
)
from tests.project import relocated

OUTPUTS = ("ratings", "rating_scale", "movies", "users", "predefined_folds")
HEADER = "customer;product;stars;rated_at\n"


def ingestion(tmp_path: Path, **file: Any) -> dict[str, Any]:
    return {
        "dataset": "file",
        "raw_dir": str(tmp_path / "raw"),
        "base_url": "http://unused",
        "download_timeout_s": 1,
        "file": {
            "path": str(tmp_path / "ratings.csv"),
            "separator": ";",
            "columns": {
                "user": "customer",
                "item": "product",
                "rating": "stars",
                "timestamp": "rated_at",
            },
            "timestamp_format": "%Y-%m-%d",
            "rating_scale": [1, 10],
            **file,
        },
    }


def run(project_config, tmp_path: Path, parameters: dict[str, Any]) -> Path:  # noqa: F811
    """Runs the pipeline with the shipped file entries written under ``tmp_path/out``."""
    out = tmp_path / "out"
    entries = project_config["catalog"]
    config = {
        name: relocated(entries[name], out / Path(_filepath(entries[name])).name)
        for name in OUTPUTS
    }
    catalog = DataCatalog.from_config(config)
    catalog["params:ingestion"] = parameters
    for name, value in NO_PREDEFINED_SPLIT.items():
        catalog[name] = value
    SequentialRunner().run(create_pipeline(), catalog)
    return out


def _filepath(entry: dict[str, Any]) -> str:
    while "filepath" not in entry:
        entry = entry["dataset"]
    return entry["filepath"]


def test_a_good_file_gives_typed_ratings_items_and_its_scale(
    project_config,  # noqa: F811
    tmp_path,
):
    (tmp_path / "ratings.csv").write_text(
        HEADER + "c2;p1;4;2020-01-02\nc1;p1;10;2020-01-01\nc1;p2;1;2020-01-03\n"
    )
    items = {
        "path": str(tmp_path / "items.csv"),
        "separator": ",",
        "columns": {"item": "sku", "title": "name"},
    }
    (tmp_path / "items.csv").write_text("sku,name\np1,One\np2,Two\n")
    out = run(project_config, tmp_path, ingestion(tmp_path, items=items))
    ratings = pl.read_parquet(out / "ratings.parquet")
    assert ratings.rows() == [
        ("c1", "p1", 10.0, 1_577_836_800),
        ("c1", "p2", 1.0, 1_578_009_600),
        ("c2", "p1", 4.0, 1_577_923_200),
    ]
    movies = pl.read_parquet(out / "movies.parquet")
    assert movies.rows() == [("p1", "One", None), ("p2", "Two", None)]
    scale = json.loads((out / "rating_scale.json").read_text())
    assert scale == {"min": 1.0, "max": 10.0, "inferred": False}
    # No demographics in a file of your own: its users, by their own (text) ids.
    users = pl.read_parquet(out / "users.parquet")
    assert users.schema == pl.Schema({**USERS_SCHEMA, "userId": pl.String()})
    assert users.rows() == [("c1", None, None, None, None), ("c2",) + (None,) * 4]


def test_an_undeclared_scale_is_inferred_and_said(
    project_config,  # noqa: F811
    tmp_path,
    caplog,
):
    (tmp_path / "ratings.csv").write_text(
        HEADER + "1;1;0;2020-01-01\n1;2;100;2020-01-01\n2;1;55;2020-01-01\n"
    )
    with caplog.at_level(logging.INFO):
        out = run(project_config, tmp_path, ingestion(tmp_path, rating_scale=None))
    scale = json.loads((out / "rating_scale.json").read_text())
    assert scale == {"min": 0.0, "max": 100.0, "inferred": True}
    assert "Rating scale inferred from the data: 0.0..100.0" in caplog.text
    assert pl.read_parquet(out / "ratings.parquet").schema["userId"] == pl.Int32


def test_one_rating_value_cannot_make_a_scale(project_config, tmp_path):  # noqa: F811
    (tmp_path / "ratings.csv").write_text(HEADER + "1;1;3;2020-01-01\n")
    with pytest.raises(MovieLensError, match="every rating is 3.0"):
        run(project_config, tmp_path, ingestion(tmp_path, rating_scale=None))
    assert not (tmp_path / "out").exists()


def test_duplicates_keep_the_latest_or_without_timestamps_the_last(
    project_config,  # noqa: F811
    tmp_path,
    caplog,
):
    (tmp_path / "ratings.csv").write_text(
        HEADER + "1;1;9;2020-01-05\n1;1;2;2020-01-01\n1;1;5;2020-01-03\n"
    )
    with caplog.at_level(logging.WARNING):
        out = run(project_config, tmp_path, ingestion(tmp_path))
    assert pl.read_parquet(out / "ratings.parquet")["rating"].to_list() == [9.0]
    assert "Dropped 2 duplicated" in caplog.text
    undated = {"user": "customer", "item": "product", "rating": "stars"}
    out = run(project_config, tmp_path, ingestion(tmp_path, columns=undated))
    assert pl.read_parquet(out / "ratings.parquet")["rating"].to_list() == [5.0]


BAD_FILES = {
    "a misspelt column": (HEADER.replace("stars", "star") + "1;1;3;2020-01-01\n", {}),
    "text ids after integer ones": (
        HEADER
        + "".join(f"{user};1;3;2020-01-01\n" for user in range(ID_SAMPLE_ROWS + 1))
        + "c1;1;3;2020-01-01\n",
        {},
    ),
    "a negative id after positive ones": (
        HEADER
        + "".join(f"{user};1;3;2020-01-01\n" for user in range(ID_SAMPLE_ROWS + 1))
        + "-5;1;3;2020-01-01\n",
        {},
    ),
    "a missing id": (HEADER + "1;1;3;2020-01-01\n;2;3;2020-01-01\n", {}),
    "a non-numeric rating": (HEADER + "1;1;3;2020-01-01\n1;2;x;2020-01-01\n", {}),
    "ratings outside the scale": (
        HEADER + "1;1;3;2020-01-01\n1;2;11;2020-01-01\n2;1;0;2020-01-01\n",
        {},
    ),
    "an unparseable timestamp": (HEADER + "1;1;3;2020-13-45\n", {}),
    "an empty file": ("", {}),
    "items of another id type": (
        HEADER + "1;1;3;2020-01-01\n",
        {"items": "sku,name\np1,One\n"},
    ),
}
EXPECTED_ERRORS = {
    "a misspelt column": r"lacks the column\(s\) \['stars'\]",
    "text ids after integer ones": "are not integer ids",
    "a negative id after positive ones": r"have an integer id outside 0..2147483647",
    "a missing id": "1 row\\(s\\) have missing values",
    "a non-numeric rating": "are not numbers",
    "ratings outside the scale": (
        r"2 row\(s\) have a rating outside 1.0..10.0 \(ingestion.file.rating_scale\)"
    ),
    "an unparseable timestamp": "do not match ingestion.file.timestamp_format",
    "an empty file": "is empty",
    "items of another id type": "must be integers, as the ratings' item ids are",
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_names_the_problem_and_writes_nothing(
    project_config,  # noqa: F811
    tmp_path,
    case,
):
    ratings_text, extra = BAD_FILES[case]
    (tmp_path / "ratings.csv").write_text(ratings_text)
    overrides = {}
    if "items" in extra:
        (tmp_path / "items.csv").write_text(extra["items"])
        overrides["items"] = {
            "path": str(tmp_path / "items.csv"),
            "columns": {"item": "sku", "title": "name"},
        }
    with pytest.raises(MovieLensError, match=EXPECTED_ERRORS[case]) as error:
        run(project_config, tmp_path, ingestion(tmp_path, **overrides))
    assert "ratings.csv" in str(error.value) or "items.csv" in str(error.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_ratings_outside_the_scale_are_counted_and_shown(project_config, tmp_path):  # noqa: F811
    (tmp_path / "ratings.csv").write_text(
        HEADER + "1;1;3;2020-01-01\n1;2;11;2020-01-01\n2;1;0;2020-01-01\n"
    )
    with pytest.raises(MovieLensError) as error:
        run(project_config, tmp_path, ingestion(tmp_path))
    shown = str(error.value)
    assert "first 2:" in shown
    assert "│ 2   ┆ 1      ┆ 2       ┆ 11.0" in shown


def test_the_temporal_split_refuses_ratings_without_timestamps():
    ratings = pl.DataFrame(
        {"userIdMapped": [0, 0], "timestamp": [None, None]},
        schema={"userIdMapped": pl.Int32, "timestamp": pl.Int64},
    )
    with pytest.raises(ValueError, match="2 rating\\(s\\) have no timestamp"):
        temporal_split_labels(ratings, [0.5, 0.25, 0.25])
