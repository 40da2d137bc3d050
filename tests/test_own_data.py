"""Your own ratings, end to end: ml-latest-small (from ../shared/data, never copied into
the repository) rewritten in another layout (`;`-separated, columns
customer,product,stars,rated_at, a 1-10 scale, ISO date-times, an items file with
other column names), then the whole default `kedro run` and the cross-validation
pipeline on it, with integer ids kept and with text ids; and a parquet file without
timestamps. Each run is a `kedro run` in a copy of the project, configured as a user
would: a file in conf/local/.

Skipped cleanly where ../shared/data/ml-latest-small is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import polars as pl
import pytest
import yaml

from tests.project import SHARED_DATA, copy_project, scratch_project
from tests.serving.rest import post, serving

RELEASE = SHARED_DATA / "ml-latest-small"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (RELEASE / "ratings.csv").is_file(), reason=f"{RELEASE} is absent"
    ),
]

# Every movie; bayesian_fm with 40 samples, not 200: these runs compare the layouts
# with each other (tests/test_real_data.py holds the accuracy targets), and the
# default's sampling and sampled model would make most of their time.
# EASE^R on 1,000 movies: on all 9,351 training movies its weights are 350 MB, written
# three times per run (trained, served, logged), and these runs compare layouts, not
# rankers.
ALL_MOVIES = {
    "processing": {"top_n_movies": None},
    "training": {"bayesian_fm": {"n_iter": 40}, "ease": {"max_items": 1000}},
}
SHORT_CROSS_VALIDATION = {
    "cross_validation": {
        "scheme": "random",
        "k": 2,
        "max_epochs": 2,
        "training_overrides": {"bayesian_fm": {"n_iter": 10, "n_kept_samples": 5}},
    }
}
SPLITS = ("train", "val", "test")


def own_layout(folder: Path, text_ids: bool) -> dict[str, Any]:
    """ml-latest-small as a user's export, and the ``ingestion`` block describing it."""
    user, item = pl.col("userId"), pl.col("movieId")
    if text_ids:
        user, item = pl.format("c{}", user), pl.format("p{}", item)
    pl.read_csv(RELEASE / "ratings.csv").select(
        user.alias("customer"),
        item.alias("product"),
        (pl.col("rating") * 2).alias("stars"),
        pl.from_epoch("timestamp", "s")
        .dt.strftime("%Y-%m-%dT%H:%M:%S")
        .alias("rated_at"),
    ).write_csv(folder / "ratings.csv", separator=";")
    pl.read_csv(RELEASE / "movies.csv").select(
        item.alias("sku"), pl.col("title").alias("name"), pl.col("genres").alias("tags")
    ).write_csv(folder / "items.csv")
    return {
        "dataset": "file",
        "file": {
            "path": str(folder / "ratings.csv"),
            "separator": ";",
            "columns": {
                "user": "customer",
                "item": "product",
                "rating": "stars",
                "timestamp": "rated_at",
            },
            "timestamp_format": "%Y-%m-%dT%H:%M:%S",
            "rating_scale": [1, 10],
            "items": {
                "path": str(folder / "items.csv"),
                "columns": {"item": "sku", "title": "name", "genres": "tags"},
            },
        },
    }


def examples(user: Any, movie: Any, rating: float = 9.0) -> dict[str, Any]:
    """The inference block's example requests in the data set's ids and scale."""
    return {
        "inference": {
            "pairs": [[user, movie]],
            "recommend": {"user_ids": [user]},
            "fold_in": {"ratings": [[movie, rating]]},
            "similar": {"movie_ids": [movie]},
        }
    }


def kedro_run(project: Path, parameters: dict[str, Any], *arguments: str) -> None:
    """``kedro run`` in ``project`` with ``parameters`` in conf/local, as a user's."""
    local = project / "conf" / "local"
    local.mkdir(parents=True, exist_ok=True)
    (local / "parameters_own.yml").write_text(yaml.safe_dump(parameters))
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *arguments],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def errors_on_test(project: Path) -> dict[str, float]:
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    return {
        entry: splits["test"]["rmse"]
        for entry, splits in metrics.items()
        if "rmse" in splits.get("test", {})
    }


def pairs(project: Path, split: str) -> pl.DataFrame:
    return pl.read_parquet(
        project / f"data/05_model_input/{split}_ratings.parquet",
        columns=["userId", "movieId"],
    ).cast({"userId": pl.Int64, "movieId": pl.Int64})


@pytest.fixture(scope="module")
def release_run(tmp_path_factory) -> Iterator[Path]:
    """The same ratings as the release itself, for reference."""
    with scratch_project(tmp_path_factory, "release") as project:
        release = {
            "ingestion": {"dataset": "ml-latest-small", "raw_dir": str(SHARED_DATA)}
        }
        kedro_run(project, release | ALL_MOVIES)
        yield project


@pytest.fixture(scope="module")
def integer_ids_run(tmp_path_factory) -> Iterator[Path]:
    with scratch_project(tmp_path_factory, "integer_ids") as project:
        ingestion = own_layout(project, text_ids=False)
        kedro_run(project, {"ingestion": ingestion} | ALL_MOVIES | examples(1, 318))
        yield project


@pytest.fixture(scope="module")
def text_ids_run(tmp_path_factory) -> Iterator[Path]:
    with scratch_project(tmp_path_factory, "text_ids") as project:
        ingestion = own_layout(project, text_ids=True)
        kedro_run(
            project, {"ingestion": ingestion} | ALL_MOVIES | examples("c1", "p318")
        )
        yield project


def test_integer_ids_give_the_release_split_and_twice_its_errors(
    release_run, integer_ids_run
):
    for split in SPLITS:
        assert pairs(integer_ids_run, split).equals(pairs(release_run, split))
    scale = json.loads(
        (integer_ids_run / "data/02_intermediate/rating_scale.json").read_text()
    )
    assert scale == {"min": 1.0, "max": 10.0, "inferred": False}
    release, own = errors_on_test(release_run), errors_on_test(integer_ids_run)
    assert set(own) == set(release)
    for baseline in ("mean_baseline", "bias_baseline"):
        assert own[baseline] == pytest.approx(2 * release[baseline], abs=1e-6)
    assert own["bayesian_fm"] == pytest.approx(2 * release["bayesian_fm"], rel=0.02)


def test_text_ids_give_every_entry_within_3_percent_of_twice(release_run, text_ids_run):
    mapping = pl.read_parquet(text_ids_run / "data/03_primary/user_mapping.parquet")
    assert mapping.schema["userId"] == pl.String
    release, own = errors_on_test(release_run), errors_on_test(text_ids_run)
    assert set(own) == set(release)
    for entry, rmse in release.items():
        assert own[entry] == pytest.approx(2 * rmse, rel=0.03), entry


@pytest.fixture(scope="module")
def served(text_ids_run) -> Any:
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{text_ids_run / 'mlflow.db'}"
    try:
        yield mlflow.pyfunc.load_model("models:/rating-prediction-file@champion")
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI")


def test_the_served_model_answers_in_text_ids(served):
    predicted = served.predict(
        pd.DataFrame({"userId": ["c1", "nobody"], "movieId": ["p318", "p318"]})
    )
    assert predicted["userId"].tolist() == ["c1", "nobody"]
    assert predicted["known_user"].tolist() == [True, False]
    assert ((predicted["prediction"] >= 1) & (predicted["prediction"] <= 10)).all()

    recommended = served.predict(
        pd.DataFrame({"userId": ["c1"]}), params={"task": "recommend", "k": 5}
    )
    assert len(recommended) == 5
    assert all(movie.startswith("p") for movie in recommended["movieId"])

    folded = served.predict(
        pd.DataFrame(
            {
                "userId": ["new", "new", "new"],
                "movieId": ["p1", "p260", "p318"],
                "rating": [10.0, 9.0, None],
            }
        )
    )
    assert folded["userId"].tolist() == ["new"]
    unknown = served.predict(pd.DataFrame({"userId": ["new"], "movieId": ["p318"]}))
    assert folded["prediction"].iloc[0] != unknown["prediction"].iloc[0]

    similar = served.predict(
        pd.DataFrame({"movieId": ["p1"]}), params={"task": "similar", "k": 3}
    )
    assert len(similar) == 3 and "p1" not in similar["similarMovieId"].tolist()


def test_the_served_model_answers_text_ids_over_rest(text_ids_run):
    tracking_uri = f"sqlite:///{text_ids_run / 'mlflow.db'}"
    model = "models:/rating-prediction-file@champion"
    with serving(model, tracking_uri, text_ids_run) as server:
        status, body = post(
            server.url,
            '{"dataframe_split": {"columns": ["userId", "movieId"], '
            '"data": [["c1", "p318"], ["nobody", "p318"]]}}',
        )
        assert status == 200, body
        rows = body["predictions"]
        assert [row["userId"] for row in rows] == ["c1", "nobody"]
        assert [row["known_user"] for row in rows] == [True, False]
        status, body = post(
            server.url,
            '{"dataframe_split": {"columns": ["userId", "movieId"], '
            '"data": [[1, 318]]}, "params": {}}',
        )
        assert status == 400 and "userId" in body["message"], body


@pytest.mark.parametrize("text_ids", [False, True])
def test_cross_validation_runs_on_the_own_layout(tmp_path, text_ids):
    project = copy_project(tmp_path)
    ingestion = own_layout(project, text_ids=text_ids)
    parameters = {"ingestion": ingestion} | ALL_MOVIES | SHORT_CROSS_VALIDATION
    kedro_run(project, parameters, "--pipelines", "cross_validation")
    summary = json.loads(
        (project / "data/08_reporting/metrics_summary.json").read_text()
    )
    bias = summary["entries"]["bias_baseline"]["test"]["rmse"]
    assert bias["n"] == 2 and 1.4 < bias["mean"] < 2.4


def test_a_parquet_file_with_integer_ids_and_no_timestamps(tmp_path):
    project = copy_project(tmp_path)
    pl.read_csv(RELEASE / "ratings.csv").select(
        pl.col("userId").alias("user"), pl.col("movieId").alias("item"), "rating"
    ).write_parquet(project / "ratings.parquet")
    ingestion = {
        "dataset": "file",
        "file": {
            "path": str(project / "ratings.parquet"),
            "columns": {"user": "user", "item": "item", "rating": "rating"},
        },
    }
    kedro_run(project, {"ingestion": ingestion} | examples(1, 318, rating=4.5))
    scale = json.loads((project / "data/02_intermediate/rating_scale.json").read_text())
    assert scale == {"min": 0.5, "max": 5.0, "inferred": True}
    summary = (project / "data/08_reporting/summary.md").read_text()
    assert "inferred" in summary
    movies = pl.read_parquet(project / "data/02_intermediate/movies.parquet")
    assert movies.is_empty() and movies.schema["movieId"] == pl.Int32
