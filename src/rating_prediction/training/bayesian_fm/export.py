"""The exact export of a sampled Bayesian FM to the biased MF form: see the package
docstring."""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sps
import torch

with warnings.catch_warnings():  # myFM 0.4 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import myfm

from rating_prediction.training.bayesian_fm.features import RelationBlocks


def export_biased_mf(
    model: myfm.MyFMRegressor, blocks: RelationBlocks, n_samples: int | None = None
) -> tuple[dict[str, torch.Tensor], float]:
    """The posterior mean of ``model``'s first ``n_samples`` kept samples (all by
    default) as a ``BiasedMatrixFactorization`` state dict (``S * rank`` factors) and
    its global mean (the mean of ``w0``)."""
    samples = model.predictor_.samples[:n_samples]
    n_user_features = blocks.users.shape[1]
    user_parts, movie_parts = [], []
    for sample in samples:
        w, v = np.asarray(sample.w), np.asarray(sample.V)
        user_parts.append(_block_terms(blocks.users, w, v, slice(0, n_user_features)))
        movie_parts.append(
            _block_terms(blocks.movies, w, v, slice(n_user_features, None))
        )
    scale = 1.0 / math.sqrt(len(samples))
    state = {
        "user_factors.weight": np.hstack([part[1] for part in user_parts]) * scale,
        "movie_factors.weight": np.hstack([part[1] for part in movie_parts]) * scale,
        "user_bias.weight": np.mean([part[0] for part in user_parts], axis=0)[:, None],
        "movie_bias.weight": np.mean([part[0] for part in movie_parts], axis=0)[
            :, None
        ],
    }
    global_mean = float(np.mean([sample.w0 for sample in samples]))
    weights = {name: torch.from_numpy(value).float() for name, value in state.items()}
    weights["global_mean"] = torch.tensor(global_mean)
    return weights, global_mean


def _block_terms(
    rows: sps.csr_matrix, w: np.ndarray, v: np.ndarray, features: slice
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a block: its within-block terms (linear + pairwise) and ``sum v_f x_f``."""
    w, v = w[features], v[features]
    factors = np.asarray(rows @ v)
    squares = rows.multiply(rows) @ (v**2).sum(axis=1)
    pairwise = 0.5 * ((factors**2).sum(axis=1) - np.asarray(squares).ravel())
    return np.asarray(rows @ w).ravel() + pairwise, factors
