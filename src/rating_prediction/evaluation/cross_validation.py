"""Repeated evaluation: every model variant and baseline over K folds, with intervals.

Each fold is a train/val/test split of the same mapped ratings (the release's own
folds, K seeded random splits or K-fold cross validation; see
:mod:`rating_prediction.data.splitting`). On each fold the project's own ``training`` and
``evaluation`` pipelines run in memory, with a Kedro runner on a catalog holding only
that fold, so every variant in ``VARIANTS`` and every baseline is fitted and
scored exactly as ``kedro run`` does, and only one fold is held at a time.

:func:`summarize_folds` turns the per-fold metrics into means, standard deviations,
t-intervals and paired comparisons (:mod:`rating_prediction.evaluation.intervals`).
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import polars as pl
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from rating_prediction.data.splitting import split_labels
from rating_prediction.evaluation.intervals import interval, paired_comparison
from rating_prediction.evaluation.names import BLEND_SUFFIX, higher_is_better
from rating_prediction.models.variants import VARIANTS
from rating_prediction.parameters import CrossValidationParameters, SplitParameters
from rating_prediction.runtime.progress import Progress

logger = logging.getLogger(__name__)

# {fold: {entry: {split: {metric: value}}}}, as metrics.json per fold.
FoldMetrics = dict[str, dict[str, dict[str, dict[str, float]]]]


def fold_labels(
    ratings: pl.DataFrame,
    options: CrossValidationParameters,
    split: SplitParameters,
    predefined: tuple[pl.DataFrame, tuple[str, ...]],
) -> Iterator[tuple[str, str, pl.Series]]:
    """``(fold key, description, split labels)`` of each fold, one at a time: the
    labels of :func:`~rating_prediction.data.splitting.split_labels` with
    ``options.scheme`` as strategy and each fold's own settings.

    ``ratings`` are sorted by the mapped ids; ``predefined`` is the
    ``predefined_folds`` table and the release's default CV folds.

    A fold counts as done when the caller asks for the next one, so the progress it
    reports (:class:`~rating_prediction.runtime.progress.Progress`: a line per fold
    with the time left, once the folds have taken a while) times the caller's work on
    each fold.
    """
    fold_pairs, default_folds = predefined
    folds = _fold_settings(options, split, default_folds)
    progress = Progress("cross validation", len(folds), "folds", logger=logger)
    for index, (description, settings) in enumerate(progress.track(folds)):
        labels = split_labels(
            ratings, options.scheme, fold_pairs=fold_pairs, **settings
        )
        yield f"fold{index + 1}", description, labels


def _fold_settings(
    options: CrossValidationParameters,
    split: SplitParameters,
    default_folds: tuple[str, ...],
) -> list[tuple[str, dict[str, Any]]]:
    """Each fold's description and its :func:`split_labels` settings: the release's
    folds, ``k`` random splits seeded ``seed``, ``seed + 1``, ..., or the ``k`` folds
    of ``k``-fold cross validation."""
    if options.scheme == "predefined":
        return [
            (
                fold,
                {
                    "fold": fold,
                    "val_fraction": options.val_fraction,
                    "seed": options.seed,
                },
            )
            for fold in options.folds or default_folds
        ]
    if options.scheme == "random":
        return [
            (f"random split, seed {seed}", {"fractions": split.fractions, "seed": seed})
            for seed in range(options.seed, options.seed + options.k)
        ]
    return [
        (
            f"{options.k}-fold CV, fold {index + 1}",
            {
                "k": options.k,
                "fold_index": index,
                "val_fraction": options.val_fraction,
                "seed": options.seed,
            },
        )
        for index in range(options.k)
    ]


def evaluate_fold(
    pipeline: Pipeline, datasets: dict[str, Any], parameters: dict[str, Any]
) -> dict[str, dict[str, dict[str, float]]]:
    """Run ``pipeline`` (training + evaluation) on one fold held in memory and return
    its ``metrics`` (``{entry: {split: {metric: value}}}``).

    ``datasets`` holds the fold's splits, id mappings, movies and rating scale;
    ``parameters`` every
    parameter (each nested block is fed as ``params:<dotted key>``, as Kedro does).
    """
    catalog = DataCatalog()
    for name, value in [*datasets.items(), *_parameter_datasets(parameters)]:
        catalog[name] = MemoryDataset(value, copy_mode="assign")
    missing = pipeline.inputs() - set(catalog.keys())
    if missing:
        raise ValueError(
            f"Cross validation cannot feed {sorted(missing)} to the training and "
            "evaluation pipelines; only the splits, the id mappings, the movies, the "
            "rating scale and parameters."
        )
    SequentialRunner().run(pipeline, catalog)
    return catalog.load("metrics")


def fold_parameters(
    parameters: dict[str, Any], options: CrossValidationParameters
) -> dict[str, Any]:
    """``parameters`` with ``options.training_overrides`` merged into ``training`` and
    the epochs of every epoch-trained variant capped at ``options.max_epochs``."""
    parameters = copy.deepcopy(parameters)
    for variant, overrides in options.training_overrides.items():
        _merge(parameters["training"].setdefault(variant, {}), overrides)
    if options.max_epochs is None:
        return parameters
    for settings in parameters["training"].values():
        if isinstance(settings, dict) and "max_epochs" in settings:
            settings["max_epochs"] = options.max_epochs
            settings["min_epochs"] = min(settings["min_epochs"], options.max_epochs)
    return parameters


def _merge(target: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def summarize_folds(
    fold_metrics: FoldMetrics, confidence: float = 0.95
) -> dict[str, Any]:
    """Per entry, split and metric: mean, sd and t-interval over the folds; per test
    metric: paired comparisons of each variant with the best baseline and with every
    other variant, and whether the best variant's lead over the next is significant."""
    folds = list(fold_metrics)
    entries = _entries(fold_metrics)
    intervals = {
        entry: {
            split: {
                metric: interval(
                    _series(fold_metrics, entry, split, metric), confidence
                )
                for metric in metrics
            }
            for split, metrics in splits.items()
        }
        for entry, splits in entries.items()
    }
    # Error metrics first, then ranking metrics, each in the order metrics.json has.
    test_metrics = sorted(
        dict.fromkeys(m for splits in entries.values() for m in splits.get("test", {})),
        key=higher_is_better,
    )
    return {
        "folds": folds,
        "confidence": confidence,
        "entries": intervals,
        "comparisons": {
            metric: _comparisons(fold_metrics, intervals, metric, confidence)
            for metric in test_metrics
        },
    }


def is_variant(entry: str) -> bool:
    """A model variant or a variant's popularity blend; any other entry (``BASELINES``,
    ``RANKING_BASELINES``, train + val baselines, ...) is a baseline."""
    return entry.removesuffix(BLEND_SUFFIX) in VARIANTS


def _comparisons(
    fold_metrics: FoldMetrics,
    intervals: dict[str, Any],
    metric: str,
    confidence: float,
) -> dict[str, Any]:
    """Best baseline, variants best first, and the paired tests on test ``metric``."""
    scored = [e for e in intervals if metric in intervals[e].get("test", {})]
    sign = -1 if higher_is_better(metric) else 1
    ranked = sorted(scored, key=lambda e: sign * intervals[e]["test"][metric]["mean"])
    variants = [e for e in ranked if is_variant(e)]
    baselines = [e for e in ranked if not is_variant(e)]
    pairs = [(v, baselines[0]) for v in variants] if baselines else []
    pairs += list(itertools.combinations(variants, 2))
    tests = [
        {
            "first": first,
            "second": second,
            **paired_comparison(
                _series(fold_metrics, first, "test", metric),
                _series(fold_metrics, second, "test", metric),
                confidence,
            ),
        }
        for first, second in pairs
    ]
    return {
        "higher_is_better": higher_is_better(metric),
        "ranking": ranked,
        "best_baseline": baselines[0] if baselines else None,
        "best_variant": variants[0] if variants else None,
        "next_variant": variants[1] if len(variants) > 1 else None,
        "paired_tests": tests,
    }


def _entries(fold_metrics: FoldMetrics) -> dict[str, dict[str, list[str]]]:
    """Entry -> split -> metric names present in every fold (an entry some fold lacks,
    such as a popularity blend whose weight could not be chosen there, is left out)."""
    folds = list(fold_metrics.values())
    return {
        entry: {
            split: [
                m
                for m in metrics
                if all(m in f.get(entry, {}).get(split, {}) for f in folds)
            ]
            for split, metrics in splits.items()
        }
        for entry, splits in folds[0].items()
        if all(entry in f for f in folds)
    }


def _series(
    fold_metrics: FoldMetrics, entry: str, split: str, metric: str
) -> list[float]:
    return [float(f[entry][split][metric]) for f in fold_metrics.values()]


def _parameter_datasets(
    parameters: dict[str, Any], prefix: str = "params:"
) -> Iterator[tuple[str, Any]]:
    """``params:<key>`` for every (nested) key, as Kedro's session feeds them."""
    if prefix == "params:":
        yield "parameters", parameters
    for key, value in parameters.items():
        yield f"{prefix}{key}", value
        if isinstance(value, dict):
            yield from _parameter_datasets(value, f"{prefix}{key}.")
