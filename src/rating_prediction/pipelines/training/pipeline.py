"""Training pipeline: one modelling node per model variant, each in its own namespace.

The Lightning variants share ``train_model`` (with the variant bound); ``bayesian_fm`` has
its own node, which also reads the movies table (for the genre features).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from kedro.pipeline import Node, Pipeline

from .nodes import train_bayesian_fm, train_model

SPLIT_INPUTS = ["train_ratings", "val_ratings", "user_mapping", "movie_mapping"]


def _lightning_node(variant: str) -> tuple[Callable, list[str]]:
    """``train_model`` with ``variant`` bound: a ``functools.partial`` (picklable, for
    ``ParallelRunner``) that keeps ``train_model``'s name and docstring."""
    train_variant = functools.update_wrapper(
        functools.partial(train_model, variant=variant), train_model
    )
    return train_variant, SPLIT_INPUTS


# Each variant's node function and its inputs (besides ``params:training.<variant>``).
VARIANT_NODES: dict[str, Callable[[], tuple[Callable, list[str]]]] = {
    "inner_sigmoid": lambda: _lightning_node("inner_sigmoid"),
    "biased_mf": lambda: _lightning_node("biased_mf"),
    "bayesian_fm": lambda: (train_bayesian_fm, [*SPLIT_INPUTS, "movies"]),
}


def create_variant_pipeline(variant: str) -> Pipeline:
    """The training node in the ``variant`` namespace, reading ``params:training.<variant>``."""
    func, inputs = VARIANT_NODES[variant]()
    return Pipeline(
        [
            Node(
                func=func,
                inputs={
                    **{name: name for name in inputs},
                    "parameters": "params:training_options",
                },
                outputs=["model_weights", "model_config", "training_history"],
                name="train_model",
            ),
        ],
        namespace=variant,
        inputs=set(inputs),
        parameters={"params:training_options": f"params:training.{variant}"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum(
        (create_variant_pipeline(variant) for variant in VARIANT_NODES), Pipeline([])
    )
