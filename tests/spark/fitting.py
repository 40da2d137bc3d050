"""The Spark modelling nodes' fit, called as the spark_modelling pipeline calls it."""

from __future__ import annotations

from typing import Any

from rating_prediction.data.schema import MOVIELENS_SCALE


def fit_spark_variant(
    frames: dict,
    variant: str,
    parameters: dict[str, Any],
    evaluation: dict[str, Any],
    scale: dict[str, Any] | None = None,
) -> tuple:
    """``fit_spark_model`` of ``variant`` on ``frames`` (the split and mapping Spark
    DataFrames by catalog name), on MovieLens's scale unless told ``scale``: the
    user and movie factors, the model config and the history."""
    from rating_prediction.pipelines.spark_modelling import nodes  # noqa: PLC0415

    return nodes.fit_spark_model(
        train_ratings=frames["train_ratings"],
        val_ratings=frames["val_ratings"],
        user_mapping=frames["user_mapping"],
        movie_mapping=frames["movie_mapping"],
        rating_scale=scale or MOVIELENS_SCALE.to_dict(),
        parameters=parameters,
        evaluation=evaluation,
        variant_name=variant,
    )
