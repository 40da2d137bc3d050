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
swapped file gives an error naming it, never an execution.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import safetensors.numpy
import safetensors.torch

from rating_prediction.data.ids import ID_DTYPES, IdIndex, id_type_of
from rating_prediction.models.config import ModelConfig
from rating_prediction.runtime.atomic import atomic_destination

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


FILES = (
    "config.json",
    "weights.safetensors",
    "rated.safetensors",
    "users.parquet",
    "movies.parquet",
    "serving.json",
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


def _ranker(
    files: tuple | None, serving: dict[str, Any], users: IdIndex
) -> ServedRanker | None:
    """The served ranker from its files, its model built now."""
    if files is None:
        return None
    config, weights, history = files
    ranker = ServedRanker(
        config=config,
        state_dict=weights,
        feedback=RankerFeedback.from_dict(serving["ranker_feedback"]),
        users=IdIndex(users.ids, history["known_users"].astype(bool)),
        history=RatedIndex(history["indptr"], history["movies"]),
    )
    if len(ranker.history.indptr) != len(users) + 1:
        raise ValueError("the ranker's history does not index every user")
    ranker.model  # built now, once: checked against the weights
    return ranker


def load_served_model(folder: str | Path) -> ServedModel:
    """The :class:`ServedModel` saved in ``folder``, its torch models built once."""
    folder = Path(folder)
    config = _read_config(folder, "config.json")
    weights = _read(folder, "weights.safetensors", safetensors.torch.load_file)
    rated = _read(folder, "rated.safetensors", safetensors.numpy.load_file)
    users = _read(folder, "users.parquet", pl.read_parquet)
    movies = _read(folder, "movies.parquet", pl.read_parquet)
    serving = _read_serving(folder)
    ranker_files = _read_ranker_files(folder, serving)
    try:
        seen = movies["seen"].to_numpy()
        user_index = IdIndex(_ids(users["userId"]), users["seen"].to_numpy())
        served = ServedModel(
            config=config,
            state_dict=weights,
            users=user_index,
            movies=IdIndex(_ids(movies["movieId"]), seen),
            movie_titles=movies["title"].filter(pl.Series(seen)),
            rated=RatedIndex(rated["indptr"], rated["movies"]),
            split_fingerprint=str(serving["split_fingerprint"]),
            movie_rating_counts=movies["train_ratings"].to_numpy().astype(np.int64),
            popularity_weight=float(serving["popularity_weight"]),
            ranker=_ranker(ranker_files, serving, user_index),
        )
        # Built now, once: the model (checked against the weights), its scorer and
        # the id lookups; the ranker's were.
        for built in ("model", "scorer", "user_lookup", "movie_lookup"):
            getattr(served, built)
    except Exception as error:
        raise ValueError(
            f"The served model in {folder} is inconsistent ({type(error).__name__}: "
            f"{error}); rebuild it with `kedro run --pipelines inference`."
        ) from None
    return served


def _ids(ids: pl.Series) -> np.ndarray:
    """A file's id column as an :class:`IdIndex` holds it (int64 or numpy unicode)."""
    if ids.dtype not in ID_FILE_DTYPES:
        raise TypeError(f"{ids.name} is {ids.dtype}, not one of {ID_FILE_DTYPES}")
    return ids.to_numpy()


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
