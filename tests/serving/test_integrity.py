"""A served model proves its integrity: its structure is checked at every load, and the
verified loader checks every file of a registered version against the SHA-256 manifest
in its tags before anything of it runs. In a temporary SQLite store whose artifacts
live in a temporary folder, where the tests tamper with them."""

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
import safetensors.numpy
from mlflow.utils.file_utils import local_file_uri_to_path

from rating_prediction.serving.artifacts import (
    FILES,
    MODEL_CODE,
    RANKER_FILES,
    load_served_model,
    save_served_model,
)
from rating_prediction.serving.pyfunc import ARTIFACT
from rating_prediction.serving.registry import (
    CHAMPION,
    log_and_register,
    registered_model_name,
)
from rating_prediction.serving.verify import (
    MANIFEST_DIGEST_TAG,
    MANIFEST_TAG,
    IntegrityError,
    load_verified_model,
)
from tests.serving.fixtures import assert_damage_refused_at_load
from tests.serving.rest import free_port, post, wait_until_up

NAME = registered_model_name("integrity")
VERSION_URI = f"models:/{NAME}/1"
METRICS = {
    "biased_mf": {"test": {"rmse": 0.9}},
    "ease": {"test": {"ndcg_at_10": 0.3}},
}
SERVED = f"artifacts/{ARTIFACT}"
# Every file of the logged model with a ranker: MLflow's own, the code, the folder.
MODEL_FILES = (
    "MLmodel",
    "pyfunc_model.py",
    "conda.yaml",
    "python_env.yaml",
    "requirements.txt",
    "input_example.json",
    "serving_input_example.json",
    *(f"{SERVED}/{name}" for name in FILES + RANKER_FILES),
)
REQUEST = pd.DataFrame({"userId": [10], "movieId": [1]})


# Structure, checked at every load.


@pytest.fixture(scope="module")
def ranked_folder(ranked_served, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ranked") / "served_model"
    save_served_model(ranked_served, folder)
    return folder


@pytest.fixture(scope="module")
def integer_folder(served, tmp_path_factory) -> Path:
    """A version-2 folder: its ids are declared integers."""
    folder = tmp_path_factory.mktemp("plain") / "served_model"
    save_served_model(served, folder)
    return folder


def change_arrays(path: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    arrays = safetensors.numpy.load_file(path)
    change(arrays)
    safetensors.numpy.save_file(arrays, path)


def change_table(path: Path, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    change(pl.read_parquet(path)).write_parquet(path)


def first_float(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return next(array for array in arrays.values() if array.dtype.kind == "f")


def nan_weight(arrays):
    first_float(arrays).flat[0] = np.nan


def infinite_weight(arrays):
    first_float(arrays).flat[-1] = np.inf


def repeat_second_id(table: pl.DataFrame) -> pl.DataFrame:
    column = table.columns[0]
    return table.with_columns(table[column].scatter(1, table[column][0]))


def indptr_past_the_end(arrays):
    arrays["indptr"][-1] += 5


def decreasing_indptr(arrays):
    arrays["indptr"][1] = arrays["indptr"][2] + 1


def movie_out_of_range(arrays):
    arrays["movies"][0] = 99


def edit_json(name: str, **changes):
    def edit(folder: Path) -> None:
        path = folder / name
        path.write_text(json.dumps(json.loads(path.read_text()) | changes))

    return edit


STRUCTURE_CASES = {
    "NaN weights": (
        "weights.safetensors",
        lambda f: change_arrays(f / "weights.safetensors", nan_weight),
        "holds NaN or infinite values in",
    ),
    "infinite ranker weights": (
        "ranker/weights.safetensors",
        lambda f: change_arrays(f / "ranker/weights.safetensors", infinite_weight),
        "holds NaN or infinite values in",
    ),
    "reordered users": (
        "users.parquet",
        lambda f: change_table(f / "users.parquet", lambda t: t.reverse()),
        r"not in strictly ascending userId order.*out of order",
    ),
    "duplicate user ids": (
        "users.parquet",
        lambda f: change_table(f / "users.parquet", repeat_second_id),
        "a repeated id",
    ),
    "duplicate movie ids": (
        "movies.parquet",
        lambda f: change_table(f / "movies.parquet", repeat_second_id),
        "a repeated id",
    ),
    "a null id": (
        "movies.parquet",
        lambda f: change_table(
            f / "movies.parquet",
            lambda t: t.with_columns(t["movieId"].scatter(0, None)),
        ),
        "has null values",
    ),
    "an indptr past the end": (
        "rated.safetensors",
        lambda f: change_arrays(f / "rated.safetensors", indptr_past_the_end),
        "indptr that does not rise from 0 to",
    ),
    "a decreasing indptr": (
        "rated.safetensors",
        lambda f: change_arrays(f / "rated.safetensors", decreasing_indptr),
        "without decreasing",
    ),
    "a rated movie out of range": (
        "rated.safetensors",
        lambda f: change_arrays(f / "rated.safetensors", movie_out_of_range),
        "outside the 5 movies' indices",
    ),
    "a ranker history past the end": (
        "ranker/history.safetensors",
        lambda f: change_arrays(f / "ranker/history.safetensors", indptr_past_the_end),
        "indptr that does not rise",
    ),
    "a config with fewer users than the ids": (
        "config.json",
        edit_json("config.json", n_users=2),
        "declares 2 users",
    ),
    "a NaN popularity weight": (
        "serving.json",
        edit_json("serving.json", popularity_weight=float("nan")),
        r"popularity_weight nan, not in \[0, 1\]",
    ),
    "a manifest that leaves a file out": (
        "manifest.json",
        lambda f: (f / "extra.bin").write_bytes(b"\0"),
        r"does not list the folder's files: \['extra.bin'\]",
    ),
}


@pytest.mark.parametrize("case", list(STRUCTURE_CASES))
def test_a_model_with_broken_structure_is_refused_at_load_naming_the_file(
    ranked_folder, tmp_path, case
):
    assert_damage_refused_at_load(ranked_folder, tmp_path, STRUCTURE_CASES[case])


def test_ids_of_another_type_than_the_format_declares_are_refused(
    integer_folder, tmp_path
):
    folder = shutil.copytree(integer_folder, tmp_path / "served_model")
    change_table(
        folder / "users.parquet",
        lambda t: t.with_columns(pl.col("userId").cast(pl.String)),
    )
    with pytest.raises(ValueError, match=r"users.parquet .* of type String, not Int64"):
        load_served_model(folder)


def test_the_folder_lists_its_files_and_the_code_in_its_manifest(ranked_folder):
    manifest = json.loads((ranked_folder / "manifest.json").read_text())
    assert manifest["algorithm"] == "sha256"
    assert set(manifest["files"]) == set(FILES + RANKER_FILES) - {"manifest.json"}
    weights = (ranked_folder / "weights.safetensors").read_bytes()
    assert (
        manifest["files"]["weights.safetensors"] == hashlib.sha256(weights).hexdigest()
    )
    assert manifest["code"] == {
        "pyfunc_model.py": hashlib.sha256(MODEL_CODE.read_bytes()).hexdigest()
    }


# The registered version and the verified loader.


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def experiment(tracking_uri, tmp_path_factory) -> str:
    """An experiment whose artifacts live in a temporary folder."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    return mlflow.create_experiment("integrity", artifacts.as_uri())


@pytest.fixture(scope="module")
def stored(ranked_folder, experiment) -> Path:
    """Registers the ranked model (version 1, the champion); returns the folder the
    artifact store keeps its files in."""
    with mlflow.start_run(experiment_id=experiment):
        info = log_and_register(ranked_folder, METRICS, "integrity")
    location = mlflow.MlflowClient().get_logged_model(info.model_id).artifact_location
    return Path(local_file_uri_to_path(location))


@contextmanager
def tampered(path: Path, content: bytes | None) -> Iterator[None]:
    """``path`` holds ``content`` (``None``: is removed) inside the block only."""
    original = path.read_bytes() if path.exists() else None
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    try:
        yield
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_bytes(original)


def flipped(path: Path) -> bytes:
    """The file with one bit of its middle byte flipped: same size, other content."""
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 1
    return bytes(content)


def test_the_version_vouches_for_every_file_of_the_model(stored):
    tags = mlflow.MlflowClient().get_model_version(NAME, "1").tags
    manifest = json.loads(tags[MANIFEST_TAG])
    assert set(manifest["files"]) == set(MODEL_FILES)
    assert (
        tags[MANIFEST_DIGEST_TAG]
        == hashlib.sha256(tags[MANIFEST_TAG].encode()).hexdigest()
    )
    for path, digest in manifest["files"].items():
        assert hashlib.sha256((stored / path).read_bytes()).hexdigest() == digest
    assert tags["test.rmse"] == "0.9"


def test_the_verified_loader_loads_an_untouched_model(stored):
    for uri in (VERSION_URI, f"models:/{NAME}@{CHAMPION}"):
        answer = load_verified_model(uri).predict(REQUEST)
        assert answer["known_user"].tolist() == [True]


@pytest.mark.parametrize("path", MODEL_FILES)
def test_a_changed_file_of_any_kind_is_refused_naming_it(stored, path):
    with (
        tampered(stored / path, flipped(stored / path)),
        pytest.raises(IntegrityError, match=rf"{path} was changed"),
    ):
        load_verified_model(VERSION_URI)


def test_a_missing_or_added_file_is_refused_naming_it(stored):
    removed = stored / SERVED / "movies.parquet"
    with (
        tampered(removed, None),
        pytest.raises(IntegrityError, match=f"{SERVED}/movies.parquet is missing"),
    ):
        load_verified_model(VERSION_URI)
    with (
        tampered(stored / SERVED / "extra.py", b"raise SystemExit"),
        pytest.raises(IntegrityError, match=f"{SERVED}/extra.py was added"),
    ):
        load_verified_model(VERSION_URI)


def planted_code(marker: Path) -> bytes:
    """The model's code with one line more: it creates ``marker`` when it runs."""
    return (
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "from mlflow.models import set_model\n"
        "from rating_prediction.serving.pyfunc import ServedModelPyfunc\n"
        "set_model(ServedModelPyfunc())\n"
    ).encode()


def test_a_changed_code_file_is_refused_before_it_runs(stored, tmp_path):
    marker = tmp_path / "planted-code-ran"
    with tampered(stored / "pyfunc_model.py", planted_code(marker)):
        with pytest.raises(IntegrityError, match="pyfunc_model.py was changed"):
            load_verified_model(VERSION_URI)
        assert not marker.exists()
        # What the verified loader stands between: a plain load runs the code.
        mlflow.pyfunc.load_model(VERSION_URI)
        assert marker.exists()


def test_changed_tags_or_no_manifest_are_refused(stored):
    client = mlflow.MlflowClient()
    manifest = client.get_model_version(NAME, "1").tags[MANIFEST_TAG]
    forged = manifest.replace('"algorithm"', '"algorithm" ')
    client.set_model_version_tag(NAME, "1", MANIFEST_TAG, forged)
    try:
        with pytest.raises(IntegrityError, match="tags were changed"):
            load_verified_model(VERSION_URI)
        client.delete_model_version_tag(NAME, "1", MANIFEST_TAG)
        with pytest.raises(IntegrityError, match="has no integrity manifest"):
            load_verified_model(VERSION_URI)
    finally:
        client.set_model_version_tag(NAME, "1", MANIFEST_TAG, manifest)
    load_verified_model(VERSION_URI)


def test_a_run_model_is_not_a_registered_version(stored):
    run_uri = "runs:/0123456789abcdef/model"
    with pytest.raises(IntegrityError, match="not a registered model version"):
        load_verified_model(run_uri)


def test_a_folder_changed_between_saving_and_logging_is_not_registered(
    served, experiment, tmp_path
):
    folder = tmp_path / "served_model"
    save_served_model(dataclasses.replace(served, split_fingerprint="x"), folder)
    users = folder / "users.parquet"
    pl.read_parquet(users).write_parquet(users, compression="uncompressed")
    with (
        mlflow.start_run(experiment_id=experiment),
        pytest.raises(
            IntegrityError, match=r"differs .* \['artifacts/served_model/users"
        ),
    ):
        log_and_register(folder, METRICS, "changed")
    assert not mlflow.MlflowClient().search_model_versions(
        f"name='{registered_model_name('changed')}'"
    )


# The command.


def verify_and_serve(tracking_uri: str, port: int, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rating_prediction", "verify-and-serve", VERSION_URI]
        + ["--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **popen,
    )


def test_the_command_refuses_a_changed_model_without_serving(stored, tracking_uri):
    path = f"{SERVED}/weights.safetensors"
    with tampered(stored / path, flipped(stored / path)):
        command = verify_and_serve(tracking_uri, free_port())
        output, _ = command.communicate(timeout=120)
    assert command.returncode == 1
    assert f"{path} was changed" in output.decode()
    assert "Traceback" not in output.decode()


@pytest.mark.slow
def test_the_command_serves_the_verified_model(stored, tracking_uri):
    port = free_port()
    server = verify_and_serve(tracking_uri, port, start_new_session=True)
    try:
        assert wait_until_up(server, f"http://127.0.0.1:{port}/ping")
        body = (
            '{"dataframe_split": {"columns": ["userId", "movieId"], "data": [[10, 1]]}}'
        )
        status, answer = post(f"http://127.0.0.1:{port}/invocations", body)
        assert status == 200, answer
        assert answer["predictions"][0]["known_user"] is True
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
