"""Figures of the ``reporting`` pipeline: training curves and evaluation results.

Every plot node returns a matplotlib ``Figure`` that the catalog saves as a PNG and logs
to the MLflow run. Each figure is closed as soon as it is built: ``MatplotlibDataset``
saves the ``Figure`` object itself, and open figures would otherwise pile up in pyplot's
global registry during a long run. The comparison figures are drawn from small
per-entry summaries (:func:`rating_histogram`, :func:`rmse_by_rating`,
:func:`rmse_by_popularity`), each made from one entry's test predictions, so no node
holds every entry's predictions.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rating_prediction.data.schema import RatingScale
from rating_prediction.evaluation.metrics import grouped_rmse
from rating_prediction.evaluation.names import (
    BLEND_SUFFIX,
    RANKING_BASELINES,
    is_ranking_metric,
)
from rating_prediction.models.baselines import BASELINES
from rating_prediction.parameters import ReportingParameters, parse

logger = logging.getLogger(__name__)


# A scale with at most this many rating values (half stars 0.5..5: 10, whole stars
# 1..10: 10) gets one histogram bin, and one RMSE point, per value; one with more
# (0..100: 101, or continuous ratings) gets EQUAL_BINS equal bins over [min, max].
MAX_RATING_VALUES = 50
EQUAL_BINS = 20
BASELINE_STYLES = {
    "mean_baseline": {"color": "0.6", "linestyle": ":"},
    "bias_baseline": {"color": "0.3", "linestyle": "--"},
}


def hand_over(data: Any) -> Any:
    """``data`` itself: passes a namespaced dataset on under a plain name (see the
    pipeline)."""
    return data


def plot_loss_curves(**training_histories: pl.DataFrame) -> Figure:
    """Train and validation loss per epoch, one axes per model variant.

    Each history has ``epoch``, ``train_loss`` and ``val_loss``; the epoch with the lowest
    validation loss (the checkpoint the model keeps) is marked.
    """
    figure, axes = _subplots_per_entry(training_histories, sharey=False)
    for ax, (variant, history) in zip(axes, training_histories.items()):
        epochs = history["epoch"].to_numpy()
        ax.plot(epochs, history["train_loss"].to_numpy(), marker="o", label="train")
        ax.plot(epochs, history["val_loss"].to_numpy(), marker="o", label="validation")
        best_epoch = epochs[history["val_loss"].arg_min()]
        ax.axvline(best_epoch, color="0.5", linestyle="--", label="best epoch")
        ax.set(title=variant, xlabel="Epoch", ylabel="Loss (mean squared error)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    figure.suptitle("Training and validation loss per epoch")
    return _finish(figure)


def rating_bins(ratings: np.ndarray, scale: RatingScale) -> np.ndarray:
    """Histogram bin edges for ratings on ``scale``, from the distinct ``ratings``.

    When they lie on a regular grid from ``scale.min`` to ``scale.max`` of at most
    :data:`MAX_RATING_VALUES` values (the step being their smallest gap), one bin is
    centred on each grid value (half stars: edges 0.25, 0.75, ..., 5.25), values absent
    from ``ratings`` included; else, when there are at most that many distinct values,
    one bin each, edges halfway between them and the outer ones covering the scale;
    else :data:`EQUAL_BINS` equal bins over ``[scale.min, scale.max]``.
    """
    values = np.unique(ratings[(ratings >= scale.min) & (ratings <= scale.max)])
    if values.size >= 2:
        step = float(np.diff(values).min())
        count = round((scale.max - scale.min) / step) + 1
        grid = scale.min + step * np.arange(count)
        on_grid = np.isclose(grid[-1], scale.max) and np.all(
            np.isclose(
                (values - scale.min) / step, np.round((values - scale.min) / step)
            )
        )
        if on_grid and count <= MAX_RATING_VALUES:
            return np.append(grid - step / 2, grid[-1] + step / 2)
    if 2 <= values.size <= MAX_RATING_VALUES:
        middles = (values[1:] + values[:-1]) / 2
        first = min(scale.min, values[0] - (middles[0] - values[0]))
        last = max(scale.max, values[-1] + (values[-1] - middles[-1]))
        return np.concatenate([[first], middles, [last]])
    return np.linspace(scale.min, scale.max, EQUAL_BINS + 1)


def rating_histogram(
    test_predictions: pl.DataFrame, rating_scale: dict[str, Any]
) -> pl.DataFrame:
    """How many test ratings are in each bin of :func:`rating_bins` on the data set's
    ``rating_scale``, true (``true``) and predicted (``predicted``): one row per bin,
    its edges ``low`` and ``high``."""
    scale = RatingScale.from_dict(rating_scale)
    bins = rating_bins(test_predictions["rating"].to_numpy(), scale)
    return pl.DataFrame(
        {
            "low": bins[:-1],
            "high": bins[1:],
            **{
                column: np.histogram(test_predictions[source].to_numpy(), bins)[0]
                for column, source in (("true", "rating"), ("predicted", "prediction"))
            },
        }
    )


def plot_rating_histograms(
    rating_scale: dict[str, Any], **rating_histograms: pl.DataFrame
) -> Figure:
    """Overlaid histograms of true and predicted test ratings, one axes per model, from
    each model's :func:`rating_histogram`; the x axis spans the data set's
    ``rating_scale``."""
    scale = RatingScale.from_dict(rating_scale)
    figure, axes = _subplots_per_entry(rating_histograms, sharey=True)
    for ax, (entry, counts) in zip(axes, rating_histograms.items()):
        low, high = counts["low"].to_numpy(), counts["high"].to_numpy()
        bins = np.append(low, high[-1:])
        for column in ("true", "predicted"):
            # One value per bin, weighted by its count: the bars of the whole sample.
            ax.hist(
                (low + high) / 2,
                bins=bins,
                weights=counts[column].to_numpy(),
                alpha=0.5,
                label=column,
            )
        ax.set(title=entry, xlabel="Rating", ylabel="Number of test ratings")
        ax.set_xlim(min(scale.min, bins[0]), max(scale.max, bins[-1]))
        ax.legend()
    figure.suptitle(
        "Predicted vs true ratings on the test split "
        f"(rating scale {scale.min:g}..{scale.max:g})"
    )
    return _finish(figure)


def rmse_by_rating(
    test_predictions: pl.DataFrame, rating_scale: dict[str, Any]
) -> pl.DataFrame:
    """Test RMSE per true rating value (``rating``, ``rmse``, ``n_ratings``); on a scale
    of more than :data:`MAX_RATING_VALUES` distinct ratings, per bin of
    :func:`rating_bins` instead (``rating`` then labels the bin, ``bin`` orders them)."""
    if test_predictions["rating"].n_unique() <= MAX_RATING_VALUES:
        return grouped_rmse(test_predictions, "rating")
    scale = RatingScale.from_dict(rating_scale)
    bins = rating_bins(test_predictions["rating"].to_numpy(), scale)
    index = np.clip(
        np.digitize(test_predictions["rating"].to_numpy(), bins) - 1, 0, bins.size - 2
    )
    labels = [f"{low:g}–{high:g}" for low, high in zip(bins[:-1], bins[1:])]
    binned = test_predictions.with_columns(bin=pl.Series(index, dtype=pl.Int32))
    scored = grouped_rmse(binned, "bin")
    return scored.with_columns(
        rating=pl.Series([labels[i] for i in scored["bin"]], dtype=pl.String)
    )


def plot_rmse_by_rating(**rmse_by_entry: pl.DataFrame) -> Figure:
    """Test RMSE per true rating value, each model variant against both baselines, from
    each entry's :func:`rmse_by_rating`."""
    figure = _plot_variants_against_baselines(
        rmse_by_entry, x_column="rating", xlabel="True rating"
    )
    figure.suptitle("Test RMSE by true rating")
    return _finish(figure)


def popularity_buckets(
    train_ratings: pl.DataFrame, test_ratings: pl.DataFrame, reporting: dict[str, Any]
) -> pl.DataFrame:
    """``movieId``, ``bucket`` (0 = least rated) and ``bucket_label`` of every movie
    rated in train or test.

    A movie's popularity is its number of training ratings; movies are split into
    ``reporting.popularity_buckets`` quantile buckets of (nearly) equal movie counts,
    from the least to the most rated, each labelled with its range of training ratings.
    """
    n_buckets = parse(ReportingParameters, reporting, "reporting").popularity_buckets
    return _popularity_buckets(train_ratings, test_ratings, n_buckets)


def rmse_by_popularity(
    test_predictions: pl.DataFrame, popularity_buckets: pl.DataFrame
) -> pl.DataFrame:
    """Test RMSE per movie popularity bucket (``bucket``, ``bucket_label``, ``rmse``,
    ``n_ratings``), the buckets of :func:`popularity_buckets`."""
    return grouped_rmse(
        test_predictions.join(popularity_buckets, on="movieId", how="left"),
        ["bucket", "bucket_label"],
    )


def plot_rmse_by_popularity(**rmse_by_entry: pl.DataFrame) -> Figure:
    """Test RMSE by movie popularity bucket, each model variant against both baselines,
    from each entry's :func:`rmse_by_popularity`."""
    figure = _plot_variants_against_baselines(
        rmse_by_entry,
        x_column="bucket_label",
        xlabel="Movie popularity (training ratings per movie, quantile buckets)",
    )
    figure.suptitle("Test RMSE by movie popularity")
    return _finish(figure)


def plot_test_rmse(metrics: dict[str, dict[str, dict[str, float]]]) -> Figure:
    """Horizontal bars of the test RMSE of every model variant and both baselines, the
    best at the top: one row per entry, so the names never run into each other."""
    # Ranking-only entries (popularity, random) predict no ratings.
    entries = [entry for entry in metrics if "rmse" in metrics[entry].get("test", {})]
    colors = {
        entry: BASELINE_STYLES[entry]["color"] if entry in BASELINES else f"C{index}"
        for index, entry in enumerate(entries)
    }
    # Lowest RMSE first, drawn at the top (barh draws the first row at the bottom).
    ordered = sorted(entries, key=lambda entry: -metrics[entry]["test"]["rmse"])
    rmse = [metrics[entry]["test"]["rmse"] for entry in ordered]
    figure, ax = plt.subplots(
        figsize=(7, _rows_height(len(ordered))), layout="constrained"
    )
    bars = ax.barh(ordered, rmse, color=[colors[entry] for entry in ordered])
    ax.bar_label(bars, fmt="%.3f", padding=2)
    ax.margins(x=0.12)
    ax.set(
        title="Test RMSE: model variants against baselines (lower is better)",
        xlabel="RMSE (stars)",
    )
    return _finish(figure)


def plot_ranking_metrics(metrics: dict[str, dict[str, dict[str, float]]]) -> Figure:
    """One panel per test ranking metric, each a horizontal bar per entry (variants,
    blends and the popularity and random baselines), the entries sorted by the first
    metric (NDCG@K), best at the top, in every panel alike."""
    ranked = {
        entry: {n: v for n, v in by_split["test"].items() if is_ranking_metric(n)}
        for entry, by_split in metrics.items()
        if any(is_ranking_metric(n) for n in by_split.get("test", {}))
    }
    names = list(next(iter(ranked.values()), {}))
    ordered = sorted(ranked, key=lambda entry: ranked[entry][names[0]]) if names else []
    figure, axes = plt.subplots(
        1,
        max(1, len(names)),
        figsize=(2.6 * max(1, len(names)) + 2, _rows_height(len(ordered))),
        sharey=True,
        layout="constrained",
        squeeze=False,
    )
    for ax, name in zip(axes[0], names):
        ax.barh(
            ordered,
            [ranked[entry][name] for entry in ordered],
            color=[_entry_color(entry) for entry in ordered],
        )
        ax.set_title(name)
    figure.suptitle("Top-K recommendations on the test split (higher is better)")
    return _finish(figure)


def _rows_height(n_rows: int) -> float:
    """A figure height (inches) that gives each of ``n_rows`` horizontal bars room for
    its label."""
    return 1.5 + 0.32 * max(1, n_rows)


def _entry_color(entry: str) -> str:
    """A ranking entry's color: the baselines grey, the popularity blends pale blue,
    the variants dark blue."""
    if entry in RANKING_BASELINES:
        return "0.55"
    return "#9ecae1" if entry.endswith(BLEND_SUFFIX) else "#3182bd"


def _popularity_buckets(
    train_ratings: pl.DataFrame, test_ratings: pl.DataFrame, n_buckets: int
) -> pl.DataFrame:
    """See :func:`popularity_buckets`; movies unseen in training have popularity 0."""
    popularity = (
        pl.concat([train_ratings.select("movieId"), test_ratings.select("movieId")])
        .unique()
        .join(
            train_ratings.group_by("movieId").agg(pl.len().alias("n_train")),
            on="movieId",
            how="left",
        )
        .with_columns(pl.col("n_train").fill_null(0))
        # Ranking by (popularity, movieId) gives equal-sized buckets even when many
        # movies share a rating count.
        .sort("n_train", "movieId")
        .with_columns(
            bucket=(pl.int_range(pl.len()) * n_buckets // pl.len()).cast(pl.Int32)
        )
    )
    if n_buckets > popularity.height:
        raise ValueError(
            f"'reporting.popularity_buckets' is {n_buckets} but only "
            f"{popularity.height} movies are rated in train or test: set it to at most "
            f"{popularity.height}."
        )
    labels = popularity.group_by("bucket").agg(
        bucket_label=pl.format(
            "{}–{}", pl.col("n_train").min(), pl.col("n_train").max()
        )
    )
    return popularity.join(labels, on="bucket").select(
        "movieId", "bucket", "bucket_label"
    )


def _plot_variants_against_baselines(
    rmse_by_entry: dict[str, pl.DataFrame], x_column: str, xlabel: str
) -> Figure:
    """One axes per model variant: its RMSE per group with both baselines overlaid.

    Each frame holds ``x_column`` and ``rmse``, sorted in display order.
    """
    variants = {e: f for e, f in rmse_by_entry.items() if e not in BASELINES}
    baselines = {e: f for e, f in rmse_by_entry.items() if e in BASELINES}
    figure, axes = _subplots_per_entry(variants, sharey=True)
    for index, (ax, (variant, frame)) in enumerate(zip(axes, variants.items())):
        # Categorical x positions, so string bucket labels and ratings plot alike.
        ticks = frame[x_column].cast(pl.String).to_list()
        ax.plot(
            ticks,
            frame["rmse"].to_numpy(),
            marker="o",
            color=f"C{index}",
            label=variant,
        )
        for baseline, baseline_frame in baselines.items():
            aligned = frame.select(x_column).join(
                baseline_frame, on=x_column, how="left", maintain_order="left"
            )
            ax.plot(
                ticks,
                aligned["rmse"].to_numpy(),
                marker=".",
                label=baseline,
                **BASELINE_STYLES[baseline],
            )
        ax.set(title=f"{variant} vs baselines", xlabel=xlabel, ylabel="RMSE (stars)")
        ax.tick_params(axis="x", labelrotation=30)
        ax.legend()
    return figure


def _subplots_per_entry(entries: dict[str, Any], sharey: bool) -> tuple[Figure, Any]:
    figure, axes = plt.subplots(
        1,
        len(entries),
        figsize=(6 * len(entries), 4.5),
        sharey=sharey,
        squeeze=False,
        layout="constrained",
    )
    return figure, axes[0]


def _finish(figure: Figure) -> Figure:
    """Detaches ``figure`` from pyplot so it does not stay open; it can still be saved."""
    plt.close(figure)
    return figure
