"""EASE^R (Steck 2019): the closed-form item-item ranker of the variant ``ease``.

With ``X`` the users x items interaction matrix (implicit feedback from the training
ratings) and ``P = (X^T X + lambda I)^-1``, the weights are
``B = I - P diag(1 / diag(P))``, i.e. ``B_ij = -P_ij / P_jj`` off the diagonal and
``B_jj = 0``: each item's column is the ridge regression of that item on all the
others, without the item itself. Scores are ``x_u B``
(:class:`~rating_prediction.models.rankers.EaseRanker`).

Only the ``max_items`` most-rated training movies are kept (ties to the lower movie
index): the Gram matrix is ``max_items``^2 float32 values, built from the sparse
interactions as sparse products over parts of the users, and inverted through its
Cholesky factor.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from rating_prediction.models.config import ModelConfig
from rating_prediction.parameters import EaseParameters
from rating_prediction.training.data import TrainingData
from rating_prediction.training.feedback import implicit_feedback

# Users per part of the Gram matrix's sum: parts are summed by threads at once, and a
# part's sparse product is at most max_items^2 entries.
MIN_USERS_PER_PART = 1_024


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
    """``X^T X`` (float32, ``(n_items, n_items)``) of the CSR interactions as sparse
    products, ``X_p^T X_p`` over parts of the users summed: each user adds the
    products of its own interactions, so the cost is the sum over users of their
    interactions squared, not interactions times items. The parts run on
    ``torch.get_num_threads()`` threads (scipy's product releases the GIL)."""
    n_users = len(offsets) - 1
    interactions = sp.csr_matrix((values, columns, offsets), shape=(n_users, n_items))
    n_parts = max(1, min(torch.get_num_threads(), n_users // MIN_USERS_PER_PART))
    bounds = np.linspace(0, n_users, n_parts + 1).astype(np.int64)

    def part(low: int, high: int) -> np.ndarray:
        block = interactions[low:high]
        return (block.T.tocsr() @ block).toarray()

    with ThreadPoolExecutor(n_parts) as pool:
        parts = list(pool.map(part, bounds[:-1], bounds[1:]))
    gram = parts[0]
    for other in parts[1:]:
        gram += other
    return torch.from_numpy(np.ascontiguousarray(gram, dtype=np.float32))


def ease_weights(gram: torch.Tensor, regularization: float) -> torch.Tensor:
    """``B = I - P diag(1 / diag(P))`` with ``P = (gram + regularization I)^-1``:
    ``B_ij = -P_ij / P_jj``, a zero diagonal. ``gram`` is overwritten."""
    gram.diagonal().add_(regularization)
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(gram))
    weights = inverse.div_(-inverse.diagonal()[None, :])
    weights.diagonal().zero_()
    return weights
