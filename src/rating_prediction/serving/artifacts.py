"""The served model on disk, with no pickles: a folder of tensors, tables and JSON.

``config.json`` (the :class:`~rating_prediction.models.factorization.ModelConfig`),
``weights.safetensors`` (the state dict), ``rated.safetensors`` (the movies each user
rated in training, as CSR arrays), ``users.parquet`` (userId, seen) and
``movies.parquet`` (movieId, seen, title, train_ratings: the movie's number of training
ratings, for the popularity blend) in index order, the ids Int64 or String as the data
set's are, and ``serving.json`` (the format
version, the split fingerprint and the popularity blend's weight). Every file is read
by a parser that cannot run code (JSON, safetensors, parquet), so a swapped file gives an error naming it, never an execution.
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

from .bundle import ServedModel
from .rated import RatedIndex
from .recommend import popularity_counts

# 2: movies.parquet's train_ratings and serving.json's popularity_weight.
# 3: String ids in users.parquet / movies.parquet (a version-2 reader would misread
# them). A model with integer ids is still written as version 2, its files unchanged,
# so older readers keep reading it; both versions are read.
INTEGER_IDS_FORMAT_VERSION = 2
FORMAT_VERSION = 3
READABLE_FORMAT_VERSIONS = (INTEGER_IDS_FORMAT_VERSION, FORMAT_VERSION)
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
    """The format version ``served`` is written in: 2 with integer ids, 3 otherwise."""
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


def _write(served: ServedModel, folder: Path) -> None:
    (folder / "config.json").write_text(served.config.model_dump_json(indent=2))
    safetensors.torch.save_file(
        {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in served.state_dict.items()
        },
        folder / "weights.safetensors",
    )
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
    (folder / "serving.json").write_text(
        json.dumps(
            {
                "format_version": format_version(served),
                "split_fingerprint": served.split_fingerprint,
                "popularity_weight": served.popularity_weight,
            }
        )
    )


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
        raise ValueError(
            f"The served model in {folder} has format version {found!r}, not "
            f"{' or '.join(map(str, READABLE_FORMAT_VERSIONS))}: it was built by an "
            "older version of the project and "
            "lacks the per-movie training-rating counts (movies.parquet's "
            "train_ratings) the popularity blend needs; rebuild it with "
            "`kedro run --pipelines inference`."
        )
    return serving


def load_served_model(folder: str | Path) -> ServedModel:
    """The :class:`ServedModel` saved in ``folder``, its torch model built once."""
    folder = Path(folder)
    config = _read(
        folder, "config.json", lambda p: ModelConfig.model_validate_json(p.read_bytes())
    )
    weights = _read(folder, "weights.safetensors", safetensors.torch.load_file)
    rated = _read(folder, "rated.safetensors", safetensors.numpy.load_file)
    users = _read(folder, "users.parquet", pl.read_parquet)
    movies = _read(folder, "movies.parquet", pl.read_parquet)
    serving = _read_serving(folder)
    try:
        seen = movies["seen"].to_numpy()
        served = ServedModel(
            config=config,
            state_dict=weights,
            users=IdIndex(_ids(users["userId"]), users["seen"].to_numpy()),
            movies=IdIndex(_ids(movies["movieId"]), seen),
            movie_titles=movies["title"].filter(pl.Series(seen)),
            rated=RatedIndex(rated["indptr"], rated["movies"]),
            split_fingerprint=str(serving["split_fingerprint"]),
            movie_rating_counts=movies["train_ratings"].to_numpy().astype(np.int64),
            popularity_weight=float(serving["popularity_weight"]),
        )
        # Built now, once: the model (checked against the weights), its scorer and
        # the id lookups.
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
    config = _read(
        folder, "config.json", lambda p: ModelConfig.model_validate_json(p.read_bytes())
    )
    return config.variant, str(_read_serving(folder)["split_fingerprint"])


def read_popularity_weight(folder: str | Path) -> float:
    """The popularity blend's weight the served model in ``folder`` was built with."""
    return float(_read_serving(Path(folder))["popularity_weight"])
