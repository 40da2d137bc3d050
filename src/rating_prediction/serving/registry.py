"""Each run's model as a version of a registered model; ``champion`` for the best one.

The registered model is named after the data set (``rating-prediction-<dataset>``).
Each version carries its served variant's metrics as tags (``<split>.<metric>``), the
split fingerprint and, when a ranker answers recommendations, its name (``ranker``) and
its ranking metrics (``ranker.<split>.<metric>``, e.g. ``ranker.test.ndcg_at_10``). ``champion`` moves to a new version only when its held-out metric
(test RMSE) is lower than the champion's on the same split fingerprint; a version on
other splits is never compared, so it does not take the alias.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.utils import logging_utils

from rating_prediction.evaluation.names import flat_metrics

from .artifacts import read_answered_by, read_manifest
from .pyfunc import log_served_model

logger = logging.getLogger(__name__)

CHAMPION = "champion"
HELD_OUT_METRIC = "test.rmse"
FINGERPRINT_TAG = "split_fingerprint"
RANKER_TAG = "ranker"


def registered_model_name(dataset: str) -> str:
    return f"rating-prediction-{dataset}"


def split_fingerprint(*splits: pl.DataFrame) -> str:
    """SHA-256 of the splits' userId, movieId and rating columns, in file order: equal
    exactly when the splits hold the same ratings in the same order. Integer ids are
    hashed as Int64 (as they always were); string ids as their UTF-8 bytes, each
    preceded by its length."""
    digest = hashlib.sha256()
    for split in splits:
        digest.update(str(split.height).encode())
        for column, dtype in (
            ("userId", pl.Int64),
            ("movieId", pl.Int64),
            ("rating", pl.Float64),
        ):
            values = split[column]
            if values.dtype == pl.String:
                digest.update(
                    values.str.len_bytes().cast(pl.Int64).to_numpy().tobytes()
                )
                digest.update("".join(values.to_list()).encode())
            else:
                digest.update(values.cast(dtype).to_numpy().tobytes())
    return digest.hexdigest()


def version_tags(metrics: dict[str, dict[str, float]], fingerprint: str) -> dict:
    """``metrics`` (``{split: {metric: value}}``) flattened into tags named as the
    logged metrics are (``test.ndcg_at_10``: MLflow refuses ``@`` in a tag key), plus
    the fingerprint."""
    tags = {name: str(value) for name, value in flat_metrics(metrics).items()}
    return tags | {FINGERPRINT_TAG: fingerprint}


def ranker_tags(
    metrics: dict[str, Any], answered_by: dict[str, str], variant: str
) -> dict[str, str]:
    """The served ranker's name (``ranker``) and its entry of ``metrics``
    (metrics.json) as ``ranker.<split>.<metric>`` tags; none when the rating
    ``variant`` recommends."""
    ranker = answered_by.get("recommend", variant)
    if ranker == variant:
        return {}
    ranking = flat_metrics(metrics.get(ranker, {}), RANKER_TAG)
    return {RANKER_TAG: ranker} | {name: str(value) for name, value in ranking.items()}


def _current_champion(client: mlflow.MlflowClient, name: str) -> Any:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def promote_if_better(client: mlflow.MlflowClient, name: str, version: Any) -> bool:
    """Moves ``champion`` to ``version`` when there is no champion, or when both share
    a split fingerprint and ``version``'s held-out metric is lower. Returns whether it
    moved."""
    champion = _current_champion(client, name)
    if champion is not None:
        same_splits = champion.tags.get(FINGERPRINT_TAG) == version.tags.get(
            FINGERPRINT_TAG
        )
        if not same_splits or float(version.tags[HELD_OUT_METRIC]) >= float(
            champion.tags.get(HELD_OUT_METRIC, "inf")
        ):
            logger.info(
                "Registered %s version %s; version %s stays champion (%s).",
                name,
                version.version,
                champion.version,
                "other splits" if not same_splits else "not beaten",
            )
            return False
    client.set_registered_model_alias(name, CHAMPION, version.version)
    logger.info("Registered %s version %s, the new champion.", name, version.version)
    return True


def register(model_uri: str, name: str, tags: dict[str, str]) -> tuple[Any, bool]:
    """Registers ``model_uri`` as a new version of ``name`` with ``tags``, then
    :func:`promote_if_better`. Returns the version and whether it became champion."""
    client = mlflow.MlflowClient()
    # MLflow prints its own two lines to stderr ("Successfully registered model",
    # "Created version"); the line promote_if_better logs says both.
    logging_utils.disable_logging()
    try:
        registered = mlflow.register_model(model_uri, name, tags=tags)
    finally:
        logging_utils.enable_logging()
    version = client.get_model_version(name, registered.version)
    return version, promote_if_better(client, name, version)


def run_tags(fingerprint: str, answered_by: dict[str, str]) -> dict[str, str]:
    """The served model's run tags: ``split_fingerprint`` and ``served.<task>`` (the
    variant that answers ``predict``, ``recommend``, ``similar``, ``fold_in``)."""
    return {FINGERPRINT_TAG: fingerprint} | {
        f"served.{task}": name for task, name in answered_by.items()
    }


def log_and_register(
    folder: str | Path, metrics: dict[str, Any] | None, dataset: str
) -> Any:
    """Logs the served model in ``folder`` as the model ``model`` of the active run,
    then registers it under :func:`registered_model_name` with the served variant's
    entry of ``metrics`` (metrics.json) as tags, and the served ranker's
    (:func:`ranker_tags`). Without metrics it is logged only. The run is tagged with
    the split fingerprint and the variant that answers each task
    (:func:`run_tags`), so runs can be filtered by them."""
    variant, fingerprint = read_manifest(folder)
    answered_by = read_answered_by(folder)
    mlflow.set_tags(run_tags(fingerprint, answered_by))
    logger.debug(
        "Logging the served model: %s.",
        ", ".join(f"{task} by {name}" for task, name in answered_by.items()),
    )
    info = log_served_model(folder)
    if not metrics or variant not in metrics:
        logger.warning("No metrics for %s: the model is not registered.", variant)
        return info
    tags = version_tags(metrics[variant], fingerprint) | {"variant": variant}
    tags |= ranker_tags(metrics, answered_by, variant)
    register(info.model_uri, registered_model_name(dataset), tags)
    return info
