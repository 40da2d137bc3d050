"""The served model on disk, with no pickles: a folder of tensors, tables and JSON.

``config.json`` (the :class:`~rating_prediction.models.factorization.ModelConfig`),
``weights.safetensors`` (the state dict), ``rated.safetensors`` (the movies each user
rated in training, as CSR arrays), ``users.parquet`` (userId, seen) and
``movies.parquet`` (movieId, seen, title, train_ratings: the movie's number of training
ratings, for the popularity blend) in index order, the ids Int64 or String as the data
set's are, and ``serving.json`` (the format version, the split fingerprint, the
popularity blend's weight and which variant answers each task, ``answered_by``). With a
served ranker, the folder ``ranker/`` holds its ``config.json``, ``weights.safetensors``
and ``history.safetensors`` (its known history, train + val, as CSR arrays, and the
users it knows), and ``serving.json`` how it reads ratings (``ranker_feedback``). Every
file is read by a parser that cannot run code (JSON, safetensors, parquet), so a
swapped file gives an error naming it, never an execution. ``manifest.json`` holds the
SHA-256 of every other file of the folder and of the code MLflow runs to load it
(``pyfunc_model.py``): registration puts it in the registry version's tags and the
verified loader (:mod:`.verify`) checks it before anything runs.

Loading checks each file's structure before using it, cheaply (vectorised): the id
columns of the declared type, without nulls, strictly ascending (the mappings number ids
in ascending order: a reordered file would answer users with other users' rows, a
repeated id would have two); the CSR arrays in bounds and monotone; every weight finite;
the sizes consistent with each other and with ``config.json``; for bayesian_fm's kept
samples (``SampledFactorization``), its arguments (levels ascending on the rating
scale, the time buckets), every tensor float32 of the format's shape for them, and each
sample's cutpoints ascending. A file that fails is refused, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import polars as pl
import safetensors.numpy
import safetensors.torch
import torch

from rating_prediction.data.ids import ID_DTYPES, IdIndex, as_id_array, id_type_of
from rating_prediction.models.config import ModelConfig
from rating_prediction.models.sampled import (
    SampledFactorization,
    check_arguments,
    unordered_cutpoints,
    weight_shapes,
)
from rating_prediction.runtime.atomic import atomic_destination
from rating_prediction.runtime.lineage import file_digest

from .bundle import TASKS, ServedModel, ServedRanker
from .ranker import RankerFeedback
from .rated import RatedIndex
from .recommend import popularity_counts

# 2: movies.parquet's train_ratings and serving.json's popularity_weight.
# 3: String ids in users.parquet / movies.parquet (a version-2 reader would misread
# them). A model with integer ids is still written as version 2, its files unchanged,
# so older readers keep reading it.
# 4: the served ranker in ranker/ (a version-2 or 3 reader would recommend with the
# rating model, silently). A model without a ranker is still written as version 2 or 3.
# Every version is read; serving.json's answered_by is new in all three, and absent
# from older folders (then the rating model answers every task).
INTEGER_IDS_FORMAT_VERSION = 2
FORMAT_VERSION = 3
RANKER_FORMAT_VERSION = 4
READABLE_FORMAT_VERSIONS = (
    INTEGER_IDS_FORMAT_VERSION,
    FORMAT_VERSION,
    RANKER_FORMAT_VERSION,
)
RANKER_FOLDER = "ranker"
MOVIES_FILE_SCHEMA = pl.Schema(
    {
        "movieId": pl.Int64,
        "seen": pl.Boolean,
        "title": pl.String,
        "train_ratings": pl.Int64,
    }
)
ID_FILE_DTYPES = tuple(ID_DTYPES.values())


def movies_file_schema(movie_ids: pl.DataType = pl.Int64()) -> pl.Schema:
    """``movies.parquet``'s schema, its movieId Int64 or String."""
    return pl.Schema({**MOVIES_FILE_SCHEMA, "movieId": movie_ids})


def format_version(served: ServedModel) -> int:
    """The format version ``served`` is written in: 4 with a ranker; else 2 with
    integer ids, 3 otherwise."""
    if served.ranker is not None:
        return RANKER_FORMAT_VERSION
    if served.users.id_type == served.movies.id_type == "integer":
        return INTEGER_IDS_FORMAT_VERSION
    return FORMAT_VERSION


MANIFEST_FILE = "manifest.json"
MANIFEST_ALGORITHM = "sha256"
# The code MLflow runs to load the model (models from code), logged beside this folder
# by the pyfunc: its digest goes into the manifest with the folder's files.
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
FILES = (
    "config.json",
    "weights.safetensors",
    "rated.safetensors",
    "users.parquet",
    "movies.parquet",
    "serving.json",
    MANIFEST_FILE,
)
RANKER_FILES = tuple(
    f"{RANKER_FOLDER}/{name}"
    for name in ("config.json", "weights.safetensors", "history.safetensors")
)


def _write_model(config: ModelConfig, state_dict: dict[str, Any], folder: Path) -> None:
    (folder / "config.json").write_text(config.model_dump_json(indent=2))
    safetensors.torch.save_file(
        {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in state_dict.items()
        },
        folder / "weights.safetensors",
    )


def _write_ranker(ranker: ServedRanker, folder: Path) -> None:
    folder.mkdir()
    _write_model(ranker.config, ranker.state_dict, folder)
    safetensors.numpy.save_file(
        {
            "indptr": ranker.history.indptr,
            "movies": ranker.history.movies,
            "known_users": ranker.users.seen.astype(np.uint8),
        },
        folder / "history.safetensors",
    )


def _serving_json(served: ServedModel) -> dict[str, Any]:
    serving = {
        "format_version": format_version(served),
        "split_fingerprint": served.split_fingerprint,
        "popularity_weight": served.popularity_weight,
        "answered_by": served.answered_by,
    }
    if served.ranker is not None:
        serving["ranker_feedback"] = served.ranker.feedback.as_dict()
    return serving


def _write(served: ServedModel, folder: Path) -> None:
    _write_model(served.config, served.state_dict, folder)
    rated = served.rated or RatedIndex.empty(len(served.users))
    safetensors.numpy.save_file(
        {"indptr": rated.indptr, "movies": rated.movies}, folder / "rated.safetensors"
    )
    pl.DataFrame(
        {"userId": served.users.ids, "seen": served.users.seen},
        schema={"userId": served.users.dtype, "seen": pl.Boolean},
    ).write_parquet(folder / "users.parquet")
    titles = np.full(len(served.movies), None, dtype=object)
    titles[served.movies.seen] = served.movie_titles.to_numpy()
    pl.DataFrame(
        {
            "movieId": served.movies.ids,
            "seen": served.movies.seen,
            "title": titles,
            "train_ratings": popularity_counts(served),
        },
        schema=movies_file_schema(served.movies.dtype),
    ).write_parquet(folder / "movies.parquet")
    if served.ranker is not None:
        _write_ranker(served.ranker, folder / RANKER_FOLDER)
    (folder / "serving.json").write_text(json.dumps(_serving_json(served)))
    (folder / MANIFEST_FILE).write_text(json.dumps(_folder_manifest(folder), indent=2))


def _listed_files(folder: Path) -> dict[str, Path]:
    """Every file in ``folder`` but ``manifest.json`` (which cannot hold its own
    digest), by path relative to it."""
    files = {path.relative_to(folder).as_posix(): path for path in folder.rglob("*")}
    return {
        name: path
        for name, path in sorted(files.items())
        if path.is_file() and name != MANIFEST_FILE
    }


def _folder_manifest(folder: Path) -> dict[str, Any]:
    """``manifest.json``: the digests of the folder's files and of the model's code."""
    files = _listed_files(folder)
    return {
        "algorithm": MANIFEST_ALGORITHM,
        "files": {name: file_digest(path) for name, path in files.items()},
        "code": {MODEL_CODE.name: file_digest(MODEL_CODE)},
    }


def save_served_model(served: ServedModel, folder: str | Path) -> None:
    """Writes the folder atomically: a partial sibling, then renamed into place."""
    with atomic_destination(Path(folder)) as partial:
        partial.mkdir()
        _write(served, partial)


def _read(folder: Path, name: str, reader: Callable[[Path], Any]) -> Any:
    path = folder / name
    try:
        return reader(path)
    except Exception as error:  # any parser's error: name the file, keep the cause
        raise ValueError(
            f"The served model's {name} ({path}) is missing or not a valid file of its "
            f"format ({type(error).__name__}: {error}); rebuild the served model with "
            "`kedro run --pipelines inference`."
        ) from None


def _read_serving(folder: Path) -> dict[str, Any]:
    """``serving.json``; a clear error for a folder of another format version (e.g. 1,
    without the training-rating counts the popularity blend needs)."""
    serving = _read(folder, "serving.json", lambda p: json.loads(p.read_bytes()))
    found = serving.get("format_version") if isinstance(serving, dict) else None
    if found not in READABLE_FORMAT_VERSIONS:
        readable = ", ".join(map(str, READABLE_FORMAT_VERSIONS[:-1]))
        raise ValueError(
            f"The served model in {folder} has format version {found!r}, not "
            f"{readable} or {READABLE_FORMAT_VERSIONS[-1]}: it was built by another "
            "version of the project (version 1 lacks the per-movie training-rating "
            "counts, movies.parquet's train_ratings, the popularity blend needs); "
            "rebuild it with `kedro run --pipelines inference`."
        )
    return serving


def _read_config(folder: Path, name: str) -> ModelConfig:
    return _read(
        folder, name, lambda p: ModelConfig.model_validate_json(p.read_bytes())
    )


def _refuse(folder: Path, name: str, problem: str) -> NoReturn:
    raise ValueError(
        f"The served model's {name} ({folder / name}) {problem}; rebuild the served "
        "model with `kedro run --pipelines inference`."
    )


def _read_folder_manifest(folder: Path) -> None:
    """Checks that ``manifest.json`` is one and lists exactly the folder's other files
    (their digests are the verified loader's to check, against the registry); a
    folder written before manifests has none."""
    if not (folder / MANIFEST_FILE).exists():
        return
    manifest = _read(folder, MANIFEST_FILE, lambda p: json.loads(p.read_bytes()))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        _refuse(folder, MANIFEST_FILE, "is not a manifest of SHA-256 digests")
    listed, present = set(manifest["files"]), set(_listed_files(folder))
    if listed != present:
        unlisted = sorted(listed ^ present)
        _refuse(folder, MANIFEST_FILE, f"does not list the folder's files: {unlisted}")


def _read_ranker_files(folder: Path, serving: dict[str, Any]) -> tuple | None:
    """The served ranker's config, weights and history arrays in a version-4 folder;
    ``None`` in an older one, which has no ranker."""
    if serving["format_version"] != RANKER_FORMAT_VERSION:
        return None
    config_file, weights_file, history_file = RANKER_FILES
    return (
        _read_config(folder, config_file),
        _read(folder, weights_file, safetensors.torch.load_file),
        _read(folder, history_file, safetensors.numpy.load_file),
    )


def _check_ids(
    folder: Path,
    name: str,
    table: pl.DataFrame,
    schema: pl.Schema,
    declared: pl.DataType | None,
) -> np.ndarray:
    """The ids of ``table`` (its first column in ``schema``) as an :class:`IdIndex`
    holds them, after checking the table against ``schema`` (the ids Int64 or String,
    or ``declared``), nulls and the ids' order."""
    column = next(iter(schema))
    id_dtype = table.schema.get(column)
    allowed = ID_FILE_DTYPES if declared is None else (declared,)
    if id_dtype not in allowed:
        expected = " or ".join(map(str, allowed))
        _refuse(folder, name, f"has {column} of type {id_dtype}, not {expected}")
    if table.schema != pl.Schema({**schema, column: id_dtype}):
        _refuse(folder, name, f"has columns {dict(table.schema)}, not {dict(schema)}")
    nulls = table.null_count().row(0, named=True)
    nulls.pop("title", None)  # a movie may have no title
    if any(nulls.values()):
        _refuse(folder, name, f"has null values: {nulls}")
    ids = as_id_array(table[column].to_numpy(), id_type_of(id_dtype))
    wrong = np.flatnonzero(ids[1:] <= ids[:-1])
    if wrong.size:
        row = int(wrong[0]) + 1
        kind = "a repeated id" if ids[row] == ids[row - 1] else "out of order"
        _refuse(
            folder,
            name,
            f"is not in strictly ascending {column} order, as the id mappings number "
            f"them: row {row} ({ids[row].item()!r}) follows "
            f"{ids[row - 1].item()!r}, {kind}",
        )
    return ids


def _check_weights(folder: Path, name: str, weights: dict[str, torch.Tensor]) -> None:
    """Every floating-point tensor finite: a NaN would answer NaN, or rank nothing."""
    for key, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            _refuse(folder, name, f"holds NaN or infinite values in {key!r}")


def _check_sampled(
    folder: Path, config: ModelConfig, weights: dict[str, torch.Tensor]
) -> None:
    """A ``SampledFactorization``'s arguments (``config.json``) and its tensors
    (``weights.safetensors``: float32, the format's names and shapes for those
    arguments, each sample's cutpoints ascending); other models are left to
    ``load_state_dict``."""
    if config.rebuilt_class() is not SampledFactorization:
        return
    try:
        check_arguments(config.model_kwargs)
    except ValueError as error:
        _refuse(folder, "config.json", f"has invalid model_kwargs: {error}")
    expected = weight_shapes(config.n_users, config.n_movies, config.model_kwargs)
    found = {name: tuple(tensor.shape) for name, tensor in weights.items()}
    if found != expected:
        _refuse(
            folder,
            "weights.safetensors",
            f"holds tensors of shapes {found}, not the {expected} of config.json",
        )
    if any(tensor.dtype != torch.float32 for tensor in weights.values()):
        _refuse(folder, "weights.safetensors", "holds tensors other than float32")
    sample = unordered_cutpoints(weights.get("cutpoints", torch.zeros(0, 0)))
    if sample is not None:
        _refuse(
            folder,
            "weights.safetensors",
            f"has cutpoints that are not ascending in sample {sample}",
        )


def _check_csr(
    folder: Path, name: str, arrays: dict[str, np.ndarray], rows: int, columns: int
) -> RatedIndex:
    """``indptr`` (int64, ``rows + 1`` entries, from 0 up to the number of entries,
    never decreasing) and ``movies`` (int32 in ``0..columns-1``) as a CSR index."""
    indptr, movies = arrays.get("indptr"), arrays.get("movies")
    if indptr is None or movies is None:
        _refuse(folder, name, f"lacks indptr or movies (it holds {sorted(arrays)})")
    if indptr.dtype != np.int64 or movies.dtype != np.int32 or movies.ndim != 1:
        _refuse(folder, name, "is not an int64 indptr and a 1-d int32 movies array")
    if indptr.shape != (rows + 1,):
        _refuse(folder, name, f"has indptr of shape {indptr.shape}, not ({rows + 1},)")
    if indptr[0] != 0 or indptr[-1] != len(movies) or np.any(indptr[1:] < indptr[:-1]):
        _refuse(
            folder,
            name,
            f"has an indptr that does not rise from 0 to {len(movies)} (the number "
            "of its movies) without decreasing",
        )
    if movies.size and (movies.min() < 0 or movies.max() >= columns):
        _refuse(
            folder,
            name,
            f"has movies in [{movies.min()}, {movies.max()}], outside the "
            f"{columns} movies' indices 0..{columns - 1}",
        )
    return RatedIndex(indptr, movies)


def _check_sizes(folder: Path, name: str, config: ModelConfig, users: int, movies: int):
    """The id lookups index rows of the model's tables: never more ids than rows."""
    if users > config.n_users or movies > config.n_movies:
        _refuse(
            folder,
            name,
            f"declares {config.n_users} users and {config.n_movies} movies, fewer "
            f"than the {users} and {movies} of users.parquet and movies.parquet",
        )


def _ranker(
    folder: Path,
    files: tuple | None,
    serving: dict[str, Any],
    user_ids: np.ndarray,
    n_movies: int,
) -> ServedRanker | None:
    """The served ranker from its files, checked; its model is built by the caller."""
    if files is None:
        return None
    config, weights, history = files
    config_file, weights_file, history_file = RANKER_FILES
    _check_sizes(folder, config_file, config, len(user_ids), n_movies)
    _check_weights(folder, weights_file, weights)
    known = history.get("known_users")
    if known is None or known.dtype != np.uint8 or known.shape != user_ids.shape:
        _refuse(folder, history_file, f"lacks a uint8 known_users of {len(user_ids)}")
    if np.any(known > 1):
        _refuse(folder, history_file, "has known_users other than 0 and 1")
    try:
        feedback = RankerFeedback.from_dict(serving["ranker_feedback"])
    except (KeyError, TypeError, ValueError) as error:
        _refuse(folder, "serving.json", f"has no valid ranker_feedback ({error})")
    return ServedRanker(
        config=config,
        state_dict=weights,
        feedback=feedback,
        users=IdIndex(user_ids, known.astype(bool)),
        history=_check_csr(folder, history_file, history, len(user_ids), n_movies),
    )


def _check_serving(folder: Path, serving: dict[str, Any]) -> float:
    """``serving.json``'s popularity weight: a number in [0, 1], as the parameter."""
    weight = serving.get("popularity_weight")
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        _refuse(folder, "serving.json", f"has popularity_weight {weight!r}")
    if not 0 <= weight <= 1:
        _refuse(
            folder, "serving.json", f"has popularity_weight {weight!r}, not in [0, 1]"
        )
    return float(weight)


def load_served_model(folder: str | Path) -> ServedModel:
    """The :class:`ServedModel` saved in ``folder``, its files checked (see the module
    docstring) and its torch models built once."""
    folder = Path(folder)
    parts = _read_checked(folder)
    try:
        served = ServedModel(**parts)
        # Built now, once: the models (load_state_dict checks the weights' names and
        # shapes against the config), the scorer and the id lookups.
        for built in ("model", "scorer", "user_lookup", "movie_lookup"):
            getattr(served, built)
        if served.ranker is not None:
            served.ranker.model
    except Exception as error:
        raise ValueError(
            f"The served model in {folder} is inconsistent ({type(error).__name__}: "
            f"{error}); rebuild it with `kedro run --pipelines inference`."
        ) from None
    return served


def _read_checked(folder: Path) -> dict[str, Any]:
    """Every file of the folder read and checked: a :class:`ServedModel`'s fields."""
    config = _read_config(folder, "config.json")
    weights = _read(folder, "weights.safetensors", safetensors.torch.load_file)
    rated = _read(folder, "rated.safetensors", safetensors.numpy.load_file)
    users = _read(folder, "users.parquet", pl.read_parquet)
    movies = _read(folder, "movies.parquet", pl.read_parquet)
    serving = _read_serving(folder)
    _read_folder_manifest(folder)
    ranker_files = _read_ranker_files(folder, serving)
    # Version 2 is written only for integer ids (format_version).
    integer_ids = serving["format_version"] == INTEGER_IDS_FORMAT_VERSION
    declared = pl.Int64() if integer_ids else None
    user_schema = pl.Schema({"userId": pl.Int64, "seen": pl.Boolean})
    user_ids = _check_ids(folder, "users.parquet", users, user_schema, declared)
    movie_ids = _check_ids(
        folder, "movies.parquet", movies, MOVIES_FILE_SCHEMA, declared
    )
    _check_sizes(folder, "config.json", config, len(user_ids), len(movie_ids))
    _check_weights(folder, "weights.safetensors", weights)
    _check_sampled(folder, config, weights)
    if np.any(movies["train_ratings"].to_numpy() < 0):
        _refuse(folder, "movies.parquet", "has negative train_ratings")
    seen = movies["seen"].to_numpy()
    return {
        "config": config,
        "state_dict": weights,
        "users": IdIndex(user_ids, users["seen"].to_numpy()),
        "movies": IdIndex(movie_ids, seen),
        "movie_titles": movies["title"].filter(pl.Series(seen)),
        "rated": _check_csr(
            folder, "rated.safetensors", rated, len(user_ids), len(movie_ids)
        ),
        "split_fingerprint": str(serving["split_fingerprint"]),
        "movie_rating_counts": movies["train_ratings"].to_numpy().astype(np.int64),
        "popularity_weight": _check_serving(folder, serving),
        "ranker": _ranker(folder, ranker_files, serving, user_ids, len(movie_ids)),
    }


def read_id_types(folder: str | Path) -> dict[str, str]:
    """``{"userId": ..., "movieId": ...}``: ``"integer"`` or ``"string"``, read from
    the files' schemas without loading the model."""
    folder = Path(folder)
    return {
        column: id_type_of(
            _read(folder, name, pl.read_parquet_schema).get(column, pl.Int64())
        )
        for column, name in (("userId", "users.parquet"), ("movieId", "movies.parquet"))
    }


def first_known_id(folder: str | Path, column: str) -> Any:
    """The first (lowest) id seen in training of ``column`` (``userId`` or
    ``movieId``) in the served model in ``folder``, as a Python value; ``None`` when
    none is."""
    name = "users.parquet" if column == "userId" else "movies.parquet"
    known = _read(
        Path(folder),
        name,
        lambda path: (
            pl.scan_parquet(path).filter("seen").select(column).head(1).collect()
        ),
    )
    return known[column][0] if known.height else None


def read_manifest(folder: str | Path) -> tuple[str, str]:
    """The served variant and the split fingerprint, without loading the model."""
    folder = Path(folder)
    config = _read_config(folder, "config.json")
    return config.variant, str(_read_serving(folder)["split_fingerprint"])


def read_answered_by(folder: str | Path) -> dict[str, str]:
    """Which variant answers each task (``predict``, ``recommend``, ``similar``,
    ``fold_in``), without loading the model; a folder written before the served
    ranker answers every task with its rating variant."""
    folder = Path(folder)
    answered_by = _read_serving(folder).get("answered_by")
    if answered_by is None:
        variant = _read_config(folder, "config.json").variant
        return dict.fromkeys(TASKS, variant)
    return dict(answered_by)


def read_popularity_weight(folder: str | Path) -> float:
    """The popularity blend's weight the served model in ``folder`` was built with."""
    return float(_read_serving(Path(folder))["popularity_weight"])
