"""The exact export of a sampled Bayesian FM, served without myFM (see the package
docstring):

- :func:`export_biased_mf`: regression without a time block, as the posterior mean
  collapsed into a ``BiasedMatrixFactorization``;
- :func:`export_samples`: any other fit (ordered probit, or a time block), as the kept
  samples side by side, a
  :class:`~rating_prediction.models.sampled.SampledFactorization`.
"""

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
from rating_prediction.training.bayesian_fm.sampling import Sampler


def export_biased_mf(
    model: Sampler, blocks: RelationBlocks, n_samples: int | None = None
) -> tuple[dict[str, torch.Tensor], float]:
    """The posterior mean of ``model``'s first ``n_samples`` kept samples (all by
    default) as a ``BiasedMatrixFactorization`` state dict (``S * rank`` factors) and
    its global mean (the mean of ``w0``)."""
    state, intercepts = _sample_tables(model, blocks, n_samples)
    n_kept = len(intercepts)
    scale = 1.0 / math.sqrt(n_kept)
    collapsed = {
        "user_factors.weight": state["user_factors.weight"] * scale,
        "movie_factors.weight": state["movie_factors.weight"] * scale,
        "user_bias.weight": state["user_bias.weight"].mean(axis=1, keepdims=True),
        "movie_bias.weight": state["movie_bias.weight"].mean(axis=1, keepdims=True),
    }
    global_mean = float(np.mean(intercepts))
    weights = {
        name: torch.from_numpy(value).float() for name, value in collapsed.items()
    }
    weights["global_mean"] = torch.tensor(global_mean)
    return weights, global_mean


def export_samples(
    model: Sampler, blocks: RelationBlocks, n_samples: int | None = None
) -> dict[str, torch.Tensor]:
    """``model``'s first ``n_samples`` kept samples (all by default) as a
    ``SampledFactorization`` state dict: per block, each sample's within-block terms
    (``*_bias``, one column per sample) and factor sums (``*_factors``, ``rank``
    columns per sample); each sample's ``w0`` (``intercepts``) and, for ordered probit,
    its cutpoints."""
    state, intercepts = _sample_tables(model, blocks, n_samples)
    state["intercepts"] = intercepts
    if isinstance(model, myfm.MyFMOrderedProbit):
        samples = model.predictor_.samples[: len(intercepts)]
        state["cutpoints"] = np.asarray([sample.cutpoints[0] for sample in samples])
    return {name: torch.from_numpy(value).float() for name, value in state.items()}


def _sample_tables(
    model: Sampler, blocks: RelationBlocks, n_samples: int | None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per block (users, movies, time buckets): each sample's within-block terms
    ``(n_rows, S)`` and factor sums ``(n_rows, S * rank)``, samples side by side; and
    each sample's ``w0``."""
    samples = model.predictor_.samples[:n_samples]
    tables = {"user": blocks.users, "movie": blocks.movies}
    if blocks.time_rows is not None:
        tables["time"] = blocks.time_rows
    edges = np.cumsum([0, *(rows.shape[1] for rows in tables.values())])
    state = {}
    for index, (name, rows) in enumerate(tables.items()):
        features = slice(edges[index], edges[index + 1])
        parts = [
            _block_terms(rows, np.asarray(s.w)[features], np.asarray(s.V)[features])
            for s in samples
        ]
        state[f"{name}_bias.weight"] = np.stack([part[0] for part in parts], axis=1)
        state[f"{name}_factors.weight"] = np.hstack([part[1] for part in parts])
    return state, np.asarray([sample.w0 for sample in samples])


def _block_terms(
    rows: sps.csr_matrix, w: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a block: its within-block terms (linear + pairwise) and ``sum v_f x_f``."""
    factors = np.asarray(rows @ v)
    squares = rows.multiply(rows) @ (v**2).sum(axis=1)
    pairwise = 0.5 * ((factors**2).sum(axis=1) - np.asarray(squares).ravel())
    return np.asarray(rows @ w).ravel() + pairwise, factors
