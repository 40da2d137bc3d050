"""EASE^R (Steck 2019): the closed-form item-item ranker of the variant ``ease``.

With ``X`` the users x items interaction matrix (implicit feedback from the training
ratings) and ``P = (X^T X + lambda I)^-1``, the weights are
``B = I - P diag(1 / diag(P))``, i.e. ``B_ij = -P_ij / P_jj`` off the diagonal and
``B_jj = 0``: each item's column is the ridge regression of that item on all the
others, without the item itself. Scores are ``x_u B``
(:class:`~rating_prediction.models.rankers.EaseRanker`).

Only the ``max_items`` most-rated training movies are kept (ties to the lower movie
index): the Gram matrix is ``max_items``^2 float32 values, built from the sparse
interactions in blocks of users, and inverted through its Cholesky factor.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import torch

from rating_prediction.models.config import ModelConfig
from rating_prediction.models.rankers import sparse_rows
from rating_prediction.parameters import EaseParameters
from rating_prediction.training.data import TrainingData
from rating_prediction.training.feedback import implicit_feedback

# Users x items values of the dense block of users whose product is added to the Gram
# matrix at a time (128 MB of float32).
GRAM_BLOCK_VALUES = 2**25


def fit_variant(
    variant: str, options: EaseParameters, data: TrainingData
) -> tuple[dict[str, torch.Tensor], ModelConfig, pl.DataFrame]:
    """Fit EASE^R on ``data.train`` with ``options``: the fit function of ``ease`` in
    the variant registry. Val is not used by the fit (``regularization`` is chosen on
    val NDCG@K outside it, see conf/base/parameters_training.yml).

    Returns:
        The weights (:class:`~rating_prediction.models.rankers.EaseRanker`'s buffers),
        the model config (no epochs and no val MSE: it predicts no ratings) and a
        one-row history (settings, kept items, interactions, fit seconds).
    """
    started = time.perf_counter()
    feedback = implicit_feedback(data.train, options.feedback, options.min_rating)
    items = kept_items(feedback, options.max_items)
    offsets, columns, values = user_rows(feedback, items, data.n_users)
    weights = {
        "items": torch.from_numpy(items),
        "item_weights": ease_weights(
            gram_matrix(offsets, columns, values, len(items)), options.regularization
        ),
        "user_offsets": torch.from_numpy(offsets),
        "user_items": torch.from_numpy(columns),
        "user_values": torch.from_numpy(values),
    }
    seconds = time.perf_counter() - started
    config = ModelConfig(
        variant=variant,
        n_users=data.n_users,
        n_movies=data.n_movies,
        model_kwargs={"n_items": len(items), "n_interactions": len(columns)},
        fit_seconds=round(seconds, 3),
    )
    history = pl.DataFrame(
        {
            "settings": [f"lambda {options.regularization:g}"],
            "n_items": [len(items)],
            "n_interactions": [len(columns)],
            "fit_seconds": [round(seconds, 3)],
        }
    )
    return weights, config, history


def kept_items(feedback: pl.DataFrame, max_items: int) -> np.ndarray:
    """The movie indices EASE keeps, ascending: the ``max_items`` with the most
    interactions, equal counts to the lower movie index."""
    counts = feedback.group_by("movieIdMapped").len()
    top = counts.sort(["len", "movieIdMapped"], descending=[True, False]).head(
        max_items
    )
    return np.sort(top["movieIdMapped"].to_numpy().astype(np.int64))


def user_rows(
    feedback: pl.DataFrame, items: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's interactions with ``items`` as CSR: offsets ``(n_users + 1,)``,
    columns (positions in ``items``, int32) and values (float32)."""
    kept = feedback.join(
        pl.DataFrame(
            {
                "movieIdMapped": pl.Series(items).cast(feedback["movieIdMapped"].dtype),
                "column": np.arange(len(items), dtype=np.int32),
            }
        ),
        on="movieIdMapped",
    ).sort("userIdMapped", "column")
    counts = np.bincount(kept["userIdMapped"].to_numpy(), minlength=n_users)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return (
        offsets,
        kept["column"].to_numpy().astype(np.int32),
        kept["value"].to_numpy().astype(np.float32),
    )


def gram_matrix(
    offsets: np.ndarray, columns: np.ndarray, values: np.ndarray, n_items: int
) -> torch.Tensor:
    """``X^T X`` (float32, ``(n_items, n_items)``) of the CSR interactions, summed
    over blocks of users as sparse-times-dense products (cost: interactions times
    items, not users times items squared): ``X_b^T`` as CSR (its rows the items, the
    block's users ascending in each) times the dense ``X_b``."""
    gram = torch.zeros(n_items, n_items)
    n_users = len(offsets) - 1
    step = max(1, GRAM_BLOCK_VALUES // max(1, n_items))
    for low in range(0, n_users, step):
        high = min(low + step, n_users)
        first, last = offsets[low], offsets[high]
        if last == first:
            continue
        rows = np.repeat(np.arange(high - low), np.diff(offsets[low : high + 1]))
        block_columns, block_values = columns[first:last], values[first:last]
        dense = torch.zeros(high - low, n_items)
        dense[rows, block_columns] = torch.from_numpy(block_values)
        # By item, then user: a stable sort keeps each item's users ascending.
        by_item = np.argsort(block_columns, kind="stable")
        transposed = sparse_rows(
            torch.from_numpy(np.bincount(block_columns, minlength=n_items)),
            torch.from_numpy(rows[by_item]),
            torch.from_numpy(block_values[by_item]),
            high - low,
        )
        gram += transposed @ dense
    return gram


def ease_weights(gram: torch.Tensor, regularization: float) -> torch.Tensor:
    """``B = I - P diag(1 / diag(P))`` with ``P = (gram + regularization I)^-1``:
    ``B_ij = -P_ij / P_jj``, a zero diagonal. ``gram`` is overwritten."""
    gram.diagonal().add_(regularization)
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(gram))
    weights = inverse.div_(-inverse.diagonal()[None, :])
    weights.diagonal().zero_()
    return weights
