"""Means, spreads, confidence intervals and paired tests over repeated evaluations.

With ``n`` folds (or seeds) of one metric ``x_1..x_n``:

- ``mean`` and ``sd`` (the sample standard deviation, ``n - 1`` in the denominator);
- the ``confidence`` (95%) t-interval ``mean ± t_{n-1} * sd / sqrt(n)``: where the
  mean over infinitely many such folds would lie, if the fold figures scatter
  normally; it says nothing about a single future split, which varies by ``sd``;
- a *paired* comparison of two entries on the same folds: the t-interval and the
  two-sided paired t-test of the per-fold differences. Pairing removes the variation
  the folds share (an easy fold is easy for every model), so it detects differences
  far smaller than the two entries' own intervals suggest. "Significant" means
  ``p < 1 - confidence`` (5%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """``{"mean", "sd", "ci_low", "ci_high", "n"}`` of ``values`` (a t-interval)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("Cannot summarise an empty list of values.")
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else math.nan
    half = _half_width(sd, x.size, confidence)
    return {
        "mean": mean,
        "sd": sd,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "n": int(x.size),
    }


def paired_comparison(
    first: Sequence[float], second: Sequence[float], confidence: float = 0.95
) -> dict[str, float | bool]:
    """``first - second`` fold by fold: the mean difference, its t-interval, the paired
    t-test's ``t`` and two-sided ``p_value``, and whether it is ``significant``.

    Identical differences on every fold (zero spread) are significant when they are
    not zero; a difference of exactly zero everywhere is not.
    """
    a, b = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(
            f"A paired comparison needs two equally long lists of at least 2 values, "
            f"got {a.size} and {b.size}."
        )
    summary = interval(a - b, confidence)
    return paired_comparison_of_moments(
        summary["n"], summary["mean"], summary["sd"], confidence
    )


def paired_comparison_of_moments(
    n: int, mean_difference: float, sd_difference: float, confidence: float = 0.95
) -> dict[str, float | bool]:
    """:func:`paired_comparison` from the ``n`` differences' mean and sample standard
    deviation alone (the Spark evaluation sums them on the cluster): the paired
    t-test is the one-sample t-test of the differences."""
    half = _half_width(sd_difference, n, confidence)
    if sd_difference > 0:
        t_statistic = mean_difference / (sd_difference / math.sqrt(n))
        p_value = float(2 * stats.t.sf(abs(t_statistic), n - 1))
    else:
        t_statistic = (
            math.copysign(math.inf, mean_difference) if mean_difference else 0.0
        )
        p_value = 0.0 if mean_difference else 1.0
    return {
        "mean_difference": mean_difference,
        "ci_low": mean_difference - half,
        "ci_high": mean_difference + half,
        "t": float(t_statistic),
        "p_value": p_value,
        "significant": bool(p_value < 1 - confidence),
    }


def _half_width(sd: float, n: int, confidence: float) -> float:
    if n < 2 or math.isnan(sd):
        return math.nan
    return float(stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n))
