"""Request files: pairs and users from CSV or parquet files of any length, read and
answered in batches through the catalog entries of conf/base/catalog_inference.yml."""

from pathlib import Path

import polars as pl
import pytest
import yaml
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.pipelines.inference import create_pipeline
from rating_prediction.serving.prediction import predict_pairs
from rating_prediction.serving.request_files import RequestFileError
from tests.project import file_dataset, relocated
from tests.serving.fixtures import (
    GLOBAL_MEAN,
    MOVIE_BIAS,
    RANKER_TRAINING,
    inference_parameters,
)

from .test_pipeline import INPUT_FIXTURES

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CATALOG = PROJECT_ROOT / "conf" / "base" / "catalog_inference.yml"
REQUEST_ENTRIES = ["pair_requests", "user_requests"]
ANSWER_ENTRIES = ["pair_request_predictions", "all_user_recommendations"]
PAIRS = ["userId", "movieId"]
# Out of order, duplicates, an unknown user (999), an unknown movie (777), a user mapped
# but unseen in training (40): 11 rows, three batches of 4.
REQUESTED_PAIRS = [
    (30, 4),
    (10, 1),
    (999, 1),
    (20, 2),
    (10, 1),
    (40, 5),
    (20, 777),
    (10, 3),
    (30, 1),
    (999, 777),
    (20, 3),
]
BATCH_SIZE = 4
THREE_BATCHES = ["batch-00000.parquet", "batch-00001.parquet", "batch-00002.parquet"]


def write_requests(path: Path, frame: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def project_catalog(root: Path, files: dict[str, str]) -> dict:
    """The project's request-file and answer entries, their paths under ``root``;
    ``files`` points request entries at other files (as a conf/local/ override does)."""
    entries = yaml.safe_load(CATALOG.read_text())
    selected = {}
    for name in REQUEST_ENTRIES + ANSWER_ENTRIES:
        inner = file_dataset(entries[name])
        own = inner.get("filepath", inner.get("path"))
        selected[name] = relocated(entries[name], root / files.get(name, own))
    return selected


@pytest.fixture
def run_inference(request, trained_by_variant, tmp_path):
    """Runs the inference pipeline with the project's request-file and answer entries
    (files under ``tmp_path``) and the other inputs in memory."""

    def run(inference: dict, files: dict[str, str] | None = None) -> None:
        catalog = DataCatalog.from_config(project_catalog(tmp_path, files or {}))
        for name, fixture in INPUT_FIXTURES.items():
            catalog[name] = request.getfixturevalue(fixture)
        for variant, (config, weights) in trained_by_variant.items():
            catalog[f"{variant}.model_config"] = config
            catalog[f"{variant}.model_weights"] = weights
        catalog["params:inference"] = inference
        catalog["params:training"] = RANKER_TRAINING
        SequentialRunner().run(create_pipeline(), catalog)

    return run


def answers(root: Path, name: str) -> tuple[list[str], pl.DataFrame]:
    """The partition files of the answer folder ``name`` and their rows, in order."""
    folder = root / "data" / "07_model_output" / name
    files = sorted(path.name for path in folder.iterdir())
    return files, pl.read_parquet(folder / "*.parquet")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_pairs_file_larger_than_a_batch(run_inference, served, tmp_path, suffix):
    requested = pl.DataFrame(REQUESTED_PAIRS, schema=PAIRS, orient="row")
    pairs_file = f"data/01_raw/requests/my_pairs{suffix}"
    write_requests(tmp_path / pairs_file, requested)
    run_inference(
        inference_parameters(request_files={"batch_size": BATCH_SIZE}),
        {"pair_requests": pairs_file},
    )
    files, predicted = answers(tmp_path, "pair_request_predictions")
    assert files == THREE_BATCHES
    # File order, duplicates kept; each prediction is the served model's for that pair
    # alone (the pipeline serves `best`, biased_mf, as the `served` fixture does).
    assert predicted.select(PAIRS).rows() == REQUESTED_PAIRS
    one_at_a_time = pl.concat(
        predict_pairs(served, pair) for pair in requested.iter_slices(1)
    )
    assert predicted.equals(one_at_a_time)
    assert predicted["prediction"][2] == pytest.approx(GLOBAL_MEAN + MOVIE_BIAS[0])


def test_a_users_file_gets_one_list_per_row(run_inference, tmp_path):
    users = [30, 999, 10, 30, 20, 40]
    write_requests(
        tmp_path / "data/01_raw/requests/users.csv", pl.DataFrame({"userId": users})
    )
    run_inference(
        inference_parameters(
            batch_recommend={"top_k": 1}, request_files={"batch_size": 2}
        ),
        {"user_requests": "data/01_raw/requests/users.csv"},
    )
    files, recommended = answers(tmp_path, "all_user_recommendations")
    assert files == THREE_BATCHES
    assert recommended["userId"].to_list() == users
    assert recommended["known_user"].to_list() == [
        user in (10, 20, 30) for user in users
    ]


def test_without_files_every_known_user_and_no_pairs(run_inference, tmp_path):
    run_inference(inference_parameters())
    files, predicted = answers(tmp_path, "pair_request_predictions")
    assert files == ["batch-00000.parquet"]
    assert predicted.is_empty()
    assert predicted.columns == [*PAIRS, "prediction", "known_user", "known_movie"]
    _, recommended = answers(tmp_path, "all_user_recommendations")
    assert recommended["userId"].unique(maintain_order=True).to_list() == [10, 20, 30]


def test_a_rerun_replaces_every_partition(run_inference, tmp_path):
    pairs_file = tmp_path / "data/01_raw/requests/pairs.parquet"
    requested = pl.DataFrame(REQUESTED_PAIRS, schema=PAIRS, orient="row")
    write_requests(pairs_file, requested)
    inference = inference_parameters(request_files={"batch_size": BATCH_SIZE})
    run_inference(inference)
    write_requests(pairs_file, requested.head(2))
    run_inference(inference)
    files, predicted = answers(tmp_path, "pair_request_predictions")
    assert files == ["batch-00000.parquet"]
    assert predicted.select(PAIRS).rows() == REQUESTED_PAIRS[:2]


def test_a_bad_file_stops_the_run_before_any_answer(run_inference, tmp_path):
    pairs_file = "data/01_raw/requests/pairs.csv"
    (tmp_path / "data/01_raw/requests").mkdir(parents=True)
    (tmp_path / pairs_file).write_text("userId,movieId\n1,2\n3,x\n")
    # The node checks the file (ids of the served model's type) before answering.
    with pytest.raises(RequestFileError) as error:
        run_inference(inference_parameters(), {"pair_requests": pairs_file})
    assert f"Column 'movieId' of the request file {tmp_path / pairs_file}" in str(
        error.value
    )
    assert "line 3: 'x' (not an integer)" in str(error.value)
    assert not (tmp_path / "data/07_model_output/pair_request_predictions").exists()
