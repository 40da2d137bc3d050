"""Intervals and paired tests over folds, against figures computed by hand."""

from __future__ import annotations

import math

import pytest

from rating_prediction.evaluation.intervals import interval, paired_comparison

# t quantile of 0.975 with 4 degrees of freedom.
T_975_4 = 2.7764451051977987


def test_interval_of_five_values():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    summary = interval(values)
    sd = math.sqrt(2.5)  # sum of squares 10 over n - 1 = 4
    assert summary["mean"] == pytest.approx(3.0)
    assert summary["sd"] == pytest.approx(sd)
    half = T_975_4 * sd / math.sqrt(5)
    assert summary["ci_low"] == pytest.approx(3.0 - half)
    assert summary["ci_high"] == pytest.approx(3.0 + half)
    assert summary["n"] == 5


def test_paired_comparison_uses_fold_differences():
    """The folds differ a lot, the difference barely: pairing finds it significant."""
    first = [0.80, 0.90, 1.00, 0.85, 0.95]
    second = [0.81, 0.92, 1.01, 0.87, 0.96]
    result = paired_comparison(first, second)
    differences = [-0.01, -0.02, -0.01, -0.02, -0.01]
    mean = sum(differences) / 5
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 4)
    assert result["mean_difference"] == pytest.approx(mean)
    assert result["t"] == pytest.approx(mean / (sd / math.sqrt(5)))
    assert result["ci_high"] == pytest.approx(mean + T_975_4 * sd / math.sqrt(5))
    assert result["p_value"] < 0.05
    assert result["significant"] is True


def test_noise_is_not_significant_and_constant_differences_are():
    noisy = paired_comparison([1.0, 2.0, 3.0], [1.1, 1.9, 3.05])
    assert noisy["significant"] is False
    constant = paired_comparison([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    assert constant["significant"] is True and constant["p_value"] == 0.0
    same = paired_comparison([1.0, 2.0], [1.0, 2.0])
    assert same["significant"] is False and same["p_value"] == 1.0


def test_comparison_needs_paired_folds():
    with pytest.raises(ValueError, match="two equally long lists"):
        paired_comparison([1.0, 2.0], [1.0])
