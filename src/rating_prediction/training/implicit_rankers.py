"""ALS and BPR from benfred's ``implicit`` library: the fit function of the variants
``als`` and ``bpr``.

The training ratings become a users x movies CSR matrix of implicit feedback
(:func:`~rating_prediction.training.feedback.implicit_feedback`), which ``implicit``
factorises: on the GPU when its CUDA build is installed and sees one
(``implicit.gpu.HAS_CUDA``; the PyPI wheels are CPU-only), on every CPU core
otherwise. ALS reads each value as the confidence ``1 + alpha * value`` (Hu, Koren &
Volinsky's convention, handed to ``implicit`` in the matrix itself, its own ``alpha``
left at 1, so that :meth:`~rating_prediction.models.rankers.AlsRanker.fold_in_user`
solves exactly the user step of the fit); BPR only reads which entries are present.

The factors are saved as an :class:`~rating_prediction.models.rankers.AlsRanker` or
:class:`~rating_prediction.models.rankers.BprRanker`, rows of users and movies without
an interaction zeroed (the movies marked unfitted: they score ``-inf``).
"""

from __future__ import annotations

import time

import implicit
import numpy as np
import polars as pl
import scipy.sparse
import torch
from threadpoolctl import threadpool_limits

from rating_prediction.models.config import ModelConfig
from rating_prediction.parameters import AlsParameters, BprParameters
from rating_prediction.training.data import TrainingData
from rating_prediction.training.feedback import implicit_feedback

ImplicitOptions = AlsParameters | BprParameters


def fit_variant(
    variant: str, options: ImplicitOptions, data: TrainingData
) -> tuple[dict[str, torch.Tensor], ModelConfig, pl.DataFrame]:
    """Fit ALS (``options`` an :class:`AlsParameters`) or BPR (a
    :class:`BprParameters`) on ``data.train``: the fit function of ``als`` and ``bpr``
    in the variant registry. Val is not used by the fit (the defaults were chosen on
    val NDCG@10 outside it: benchmarks/ranker_grid.py).

    Returns:
        The weights (the ranker's buffers), the model config (no epochs and no val
        MSE: it predicts no ratings) and a one-row history (settings, movies with
        factors, interactions, fit seconds).
    """
    started = time.perf_counter()
    is_als = isinstance(options, AlsParameters)
    feedback = implicit_feedback(
        data.train, options.feedback if is_als else "binary", options.min_rating
    )
    if is_als:
        confidence = 1.0 + options.alpha * pl.col("value")
        feedback = feedback.with_columns(confidence.alias("value"))
    user_items = interaction_matrix(feedback, data.n_users, data.n_movies)
    user_factors, item_factors = factorise(options, user_items)
    weights = ranker_weights(user_items, user_factors, item_factors)
    seconds = round(time.perf_counter() - started, 3)
    config = ModelConfig(
        variant=variant,
        n_users=data.n_users,
        n_movies=data.n_movies,
        model_kwargs=fold_in_settings(options) | {"n_factors": item_factors.shape[1]},
        fit_seconds=seconds,
    )
    history = pl.DataFrame(
        {
            "settings": [settings(options)],
            "n_items": [int(weights["fitted_movies"].sum())],
            "n_interactions": [user_items.nnz],
            "fit_seconds": [seconds],
        }
    )
    return weights, config, history


def interaction_matrix(
    feedback: pl.DataFrame, n_users: int, n_movies: int
) -> scipy.sparse.csr_matrix:
    """The users x movies CSR matrix (float32) of ``feedback``'s values."""
    return scipy.sparse.csr_matrix(
        (
            feedback["value"].to_numpy().astype(np.float32),
            (feedback["userIdMapped"].to_numpy(), feedback["movieIdMapped"].to_numpy()),
        ),
        shape=(n_users, n_movies),
        dtype=np.float32,
    )


def factorise(
    options: ImplicitOptions, user_items: scipy.sparse.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """The user and movie factors (float32 numpy) of ``implicit``'s model fitted on
    ``user_items``, without its progress bar. BLAS runs on one thread meanwhile, as
    ``implicit`` asks (its own threads do the work; a threaded BLAS under them slows
    the fit and makes it warn)."""
    on_gpu = implicit.gpu.HAS_CUDA
    with threadpool_limits(1, "blas"):
        if isinstance(options, AlsParameters):
            model = implicit.als.AlternatingLeastSquares(
                factors=options.factors,
                regularization=options.regularization,
                iterations=options.iterations,
                use_gpu=on_gpu,
                num_threads=options.num_threads,
                random_state=options.seed,
            )
        else:
            model = implicit.bpr.BayesianPersonalizedRanking(
                factors=options.factors,
                learning_rate=options.learning_rate,
                regularization=options.regularization,
                iterations=options.iterations,
                use_gpu=on_gpu,
                num_threads=options.num_threads,
                random_state=options.seed,
            )
        model.fit(user_items, show_progress=False)
        fitted = model.to_cpu() if on_gpu else model
    return (
        np.asarray(fitted.user_factors, dtype=np.float32),
        np.asarray(fitted.item_factors, dtype=np.float32),
    )


def ranker_weights(
    user_items: scipy.sparse.csr_matrix,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
) -> dict[str, torch.Tensor]:
    """The ranker's buffers: the factors with zero rows for users and movies without
    an interaction (BPR leaves its random start there), and the fitted movies."""
    users_seen = np.diff(user_items.indptr) > 0
    movies_seen = np.bincount(user_items.indices, minlength=user_items.shape[1]) > 0
    return {
        "user_factors": torch.from_numpy(user_factors * users_seen[:, None]),
        "item_factors": torch.from_numpy(item_factors * movies_seen[:, None]),
        "fitted_movies": torch.from_numpy(movies_seen),
    }


def fold_in_settings(options: ImplicitOptions) -> dict[str, float]:
    """The ranker's fold-in arguments: ALS's own user step (its regularization and
    alpha); for BPR, the ridge of its least-squares fold-in."""
    if isinstance(options, AlsParameters):
        return {"regularization": options.regularization, "alpha": options.alpha}
    return {"regularization": options.fold_in_regularization}


def settings(options: ImplicitOptions) -> str:
    """The fit's settings, for its log line."""
    device = "GPU" if implicit.gpu.HAS_CUDA else "CPU"
    if isinstance(options, AlsParameters):
        return (
            f"{options.factors} factors, regularization {options.regularization:g}, "
            f"alpha {options.alpha:g}, {options.feedback} feedback, "
            f"{options.iterations} iterations on the {device}"
        )
    return (
        f"{options.factors} factors, learning rate {options.learning_rate:g}, "
        f"regularization {options.regularization:g}, {options.iterations} iterations "
        f"on the {device}"
    )
