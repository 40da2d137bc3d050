"""Each run's model as a version of a registered model; ``champion`` for the best one.

The registered model is named after the data set (``rating-prediction-<dataset>``).
Each version carries its served variant's metrics as tags (``<split>.<metric>``), the
split fingerprint and, when a ranker answers recommendations, its name (``ranker``) and
its ranking metrics (``ranker.<split>.<metric>``, e.g. ``ranker.test.ndcg_at_10``);
and the SHA-256 manifest of every file of the logged model
(:mod:`~rating_prediction.serving.verify`). ``champion`` moves to a new version only
when its held-out metric (test RMSE) is lower than the champion's on the same split
fingerprint; a version on other splits is never compared, so it does not take the
alias.

The metrics must have been computed for exactly the weights being registered: the
caller says when they were not (``ServingHooks`` checks metrics.json's lineage), and
the model is then logged in its run but not registered, so no version carries another
model's figures and the champion is not compared on them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.utils import logging_utils

from rating_prediction.evaluation.names import flat_metrics

from .artifacts import MANIFEST_FILE, MODEL_CODE, read_answered_by, read_manifest
from .pyfunc import ARTIFACT, artifact_progress_on_a_terminal, log_served_model
from .verify import IntegrityError, manifest_tags, model_digests

logger = logging.getLogger(__name__)

CHAMPION = "champion"
HELD_OUT_METRIC = "test.rmse"
FINGERPRINT_TAG = "split_fingerprint"
RANKER_TAG = "ranker"
# The run tag that says why a logged model was not registered.
NOT_REGISTERED_TAG = "not_registered"


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


def integrity_tags(model_uri: str, folder: str | Path) -> dict[str, str]:
    """The manifest tags (:func:`~.verify.manifest_tags`) of every file of the model
    logged at ``model_uri``, as the store holds it (downloaded back), after checking
    its copy of the served model ``folder`` and of the code against the folder's
    ``manifest.json``.

    Raises:
        IntegrityError: If the logged files differ from those the folder's manifest
            lists (the folder changed after it was saved, or the upload changed them).
    """
    with tempfile.TemporaryDirectory() as local, artifact_progress_on_a_terminal():
        downloaded = mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=local
        )
        digests = model_digests(downloaded)
    saved = json.loads((Path(folder) / MANIFEST_FILE).read_text())
    expected = {f"artifacts/{ARTIFACT}/{name}": d for name, d in saved["files"].items()}
    expected |= {MODEL_CODE.name: saved["code"][MODEL_CODE.name]}
    differ = sorted(path for path, d in expected.items() if digests.get(path) != d)
    if differ:
        raise IntegrityError(
            f"The model logged at {model_uri} differs from the served model in "
            f"{folder} (its manifest.json) in {differ}: it is not registered. Rebuild "
            "the served model with `kedro run --pipelines inference`."
        )
    return manifest_tags(digests)


def log_and_register(
    folder: str | Path,
    metrics: dict[str, Any] | None,
    dataset: str,
    not_registered_because: str | None = None,
) -> Any:
    """Logs the served model in ``folder`` as the model ``model`` of the active run,
    then registers it under :func:`registered_model_name` with the served variant's
    entry of ``metrics`` (metrics.json) as tags, the served ranker's
    (:func:`ranker_tags`) and the manifest of its files (:func:`integrity_tags`).
    Without metrics, or with ``not_registered_because`` (the metrics were not made
    from these weights), it is logged only, and the run's ``not_registered`` tag says
    why. The run is tagged with the split fingerprint and the variant that answers
    each task (:func:`run_tags`), so runs can be filtered by them."""
    variant, fingerprint = read_manifest(folder)
    answered_by = read_answered_by(folder)
    mlflow.set_tags(run_tags(fingerprint, answered_by))
    logger.debug(
        "Logging the served model: %s.",
        ", ".join(f"{task} by {name}" for task, name in answered_by.items()),
    )
    info = log_served_model(folder)
    if not_registered_because is None and (not metrics or variant not in metrics):
        not_registered_because = f"No metrics for {variant}"
    if not_registered_because is not None:
        logger.warning(
            "The served model is logged in this run but not registered, and the "
            "champion was not compared: %s",
            not_registered_because,
        )
        mlflow.set_tag(NOT_REGISTERED_TAG, not_registered_because)
        return info
    tags = version_tags(metrics[variant], fingerprint) | {"variant": variant}
    tags |= ranker_tags(metrics, answered_by, variant)
    tags |= integrity_tags(info.model_uri, folder)
    register(info.model_uri, registered_model_name(dataset), tags)
    return info
