import itertools
import logging

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rating_prediction.data.schema import MOVIELENS_SCALE, SPLITS, RatingScale
from rating_prediction.evaluation.names import ranking_metric_names
from rating_prediction.models.variants import VARIANTS as REGISTRY
from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.reporting.figures import (
    _popularity_buckets,
    plot_loss_curves,
    plot_ranking_metrics,
    plot_rating_histograms,
    plot_rmse_by_popularity,
    plot_rmse_by_rating,
    plot_test_rmse,
    popularity_buckets,
    rating_bins,
    rating_histogram,
    rmse_by_popularity,
    rmse_by_rating,
)
from rating_prediction.pipelines.reporting.summary import (
    format_metrics_table,
    ranker_verdict,
    results_table,
    write_summary,
)
from tests.fakes import (
    ALL_ENTRIES,
    bias_splits,
    fake_test_predictions,
    fake_training_history,
)

# The variants drawn in the figures of test predictions and loss curves: those that
# predict ratings (a ranker has neither).
VARIANTS = [name for name, entry in REGISTRY.items() if entry.predicts_ratings]
# The rating_scale dataset as ingestion records it for MovieLens.
SCALE = MOVIELENS_SCALE.to_dict()
# The evaluation's comparison of the best ranker with the popularity list.
COMPARISON = {
    "metric": "ndcg@10",
    "best_ranker": "ease",
    "users": 30,
    "best_ranker_mean": 0.3,
    "popularity_mean": 0.1,
    "mean_difference": 0.2,
    "ci_low": 0.1,
    "ci_high": 0.3,
    "p_value": 0.001,
    "significant": True,
}
# Half-star bins centred on MovieLens's rating values 0.5, 1.0, ..., 5.0.
HALF_STAR_BINS = np.arange(0.25, 5.5, 0.5)
EVALUATION = {
    "prediction_batch_size": 10,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
}


def reporting(popularity_buckets: object = 3, **figures: str) -> dict:
    """The ``reporting`` parameter block."""
    return {"popularity_buckets": popularity_buckets, "summary_figures": figures}


@pytest.fixture(scope="module")
def splits():
    return bias_splits()


@pytest.fixture(scope="module")
def test_predictions(splits):
    return fake_test_predictions(splits["test"], ALL_ENTRIES)


@pytest.fixture
def metrics():
    return {
        entry: {
            split: {"mse": (0.8 + i / 10) ** 2, "rmse": 0.8 + i / 10, "mae": 0.6}
            for split in SPLITS
        }
        for i, entry in enumerate(ALL_ENTRIES)
    }


def _assert_closed_figure(figure, n_axes: int) -> None:
    assert isinstance(figure, Figure)
    assert len(figure.axes) == n_axes
    # Detached from pyplot, so long runs do not accumulate open figures.
    assert figure.number not in plt.get_fignums()


def _legend_labels(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_plot_loss_curves_has_one_axes_per_variant():
    figure = plot_loss_curves(**{v: fake_training_history() for v in VARIANTS})
    _assert_closed_figure(figure, len(VARIANTS))
    assert [ax.get_title() for ax in figure.axes] == VARIANTS
    ax = figure.axes[0]
    assert _legend_labels(ax) == ["train", "validation", "best epoch"]
    assert ax.get_xlabel() == "Epoch"
    # The best-epoch marker sits at the epoch of the lowest validation loss.
    assert ax.lines[2].get_xdata()[0] == 3


def test_plot_rating_histograms_overlays_true_and_predicted(test_predictions):
    figure = plot_rating_histograms(
        SCALE, **{v: rating_histogram(test_predictions[v], SCALE) for v in VARIANTS}
    )
    _assert_closed_figure(figure, len(VARIANTS))
    ax = figure.axes[0]
    assert ax.get_title() == VARIANTS[0]
    assert _legend_labels(ax) == ["true", "predicted"]
    assert ax.get_xlabel() == "Rating"
    # Ten half-star bins per histogram, each bar one bin, over the scale.
    assert len(ax.patches) == 2 * 10
    assert ax.get_xlim() == (0.25, 5.25)


def test_rating_histograms_draw_the_bars_of_every_rating_and_prediction(
    test_predictions,
):
    predictions = test_predictions[VARIANTS[0]]
    counts = rating_histogram(predictions, SCALE)
    assert counts.columns == ["low", "high", "true", "predicted"]
    np.testing.assert_array_equal(counts["low"], HALF_STAR_BINS[:-1])
    figure = plot_rating_histograms(SCALE, **{VARIANTS[0]: counts})
    heights = [bar.get_height() for bar in figure.axes[0].patches]
    # What a histogram of the whole columns draws, true first.
    true, predicted = (
        np.histogram(predictions[column].to_numpy(), HALF_STAR_BINS)[0]
        for column in ("rating", "prediction")
    )
    assert heights == [*true, *predicted]
    assert true.sum() == predicted.sum() == predictions.height


def test_plot_rmse_by_rating_compares_each_variant_with_both_baselines(
    test_predictions,
):
    figure = plot_rmse_by_rating(
        **{entry: rmse_by_rating(p, SCALE) for entry, p in test_predictions.items()}
    )
    _assert_closed_figure(figure, len(VARIANTS))
    for ax, variant in zip(figure.axes, VARIANTS):
        assert ax.get_title() == f"{variant} vs baselines"
        assert _legend_labels(ax) == [variant, "mean_baseline", "bias_baseline"]
        assert ax.get_ylabel() == "RMSE (stars)"


def test_plot_rmse_by_popularity_has_one_point_per_bucket(splits, test_predictions):
    buckets = popularity_buckets(splits["train"], splits["test"], reporting(3))
    by_entry = {e: rmse_by_popularity(p, buckets) for e, p in test_predictions.items()}
    # Every test rating is in a bucket.
    assert all(frame["bucket"].null_count() == 0 for frame in by_entry.values())
    assert all(
        frame["n_ratings"].sum() == splits["test"].height for frame in by_entry.values()
    )
    figure = plot_rmse_by_popularity(**by_entry)
    _assert_closed_figure(figure, len(VARIANTS))
    ax = figure.axes[0]
    assert _legend_labels(ax) == [VARIANTS[0], "mean_baseline", "bias_baseline"]
    assert all(len(line.get_xdata()) == 3 for line in ax.lines)


@pytest.mark.parametrize("n_buckets", [0, -1, 2.5, True])
def test_popularity_buckets_reject_degenerate_buckets(splits, n_buckets):
    with pytest.raises(ParameterError, match=r"'reporting\.popularity_buckets'"):
        popularity_buckets(splits["train"], splits["test"], reporting(n_buckets))


def test_popularity_buckets_reject_more_buckets_than_movies(splits):
    n_movies = pl.concat([splits["train"], splits["test"]])["movieId"].n_unique()
    with pytest.raises(
        ValueError,
        match=rf"'reporting\.popularity_buckets' is 1000 but only {n_movies} movies"
        rf".*at most {n_movies}",
    ):
        popularity_buckets(splits["train"], splits["test"], reporting(1000))


def test_popularity_buckets_are_equal_sized_quantiles():
    # Movie m has m + 1 training ratings; movie 9 appears only in test (popularity 0).
    train = pl.DataFrame(
        {"movieId": [m for m in range(8) for _ in range(m + 1)]},
        schema={"movieId": pl.Int32},
    )
    test = pl.DataFrame({"movieId": [0, 9]}, schema={"movieId": pl.Int32})
    buckets = _popularity_buckets(train, test, n_buckets=3).sort("movieId")
    # By popularity: movies 9, 0, 1 | 2, 3, 4 | 5, 6, 7.
    assert buckets["bucket"].to_list() == [0, 0, 1, 1, 1, 2, 2, 2, 0]
    assert buckets.filter(pl.col("movieId") == 9)["bucket_label"][0] == "0–2"
    assert buckets.filter(pl.col("movieId") == 7)["bucket_label"][0] == "6–8"


def test_plot_test_rmse_has_a_bar_per_entry_the_best_at_the_top(metrics):
    figure = plot_test_rmse(metrics)
    _assert_closed_figure(figure, 1)
    ax = figure.axes[0]
    # barh lists its rows bottom up: the worst (highest RMSE) first, the best last.
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ALL_ENTRIES[::-1]
    assert [bar.get_width() for bar in ax.patches] == pytest.approx(
        [0.8 + i / 10 for i in range(len(ALL_ENTRIES))][::-1]
    )
    assert "Test RMSE" in ax.get_title()


def _many_entries(n_entries: int = 16) -> dict:
    """Metrics of ``n_entries`` long-named entries that predict and rank."""
    names = [
        f"a_rather_long_variant_name_{i}_popularity_blend" for i in range(n_entries)
    ]
    figures = {"mse": 1.0, "rmse": 1.0, "mae": 1.0}
    ranking = dict.fromkeys(ranking_metric_names(10), 0.1)
    return {
        name: {
            "train": figures,
            "val": figures,
            "test": {**figures, "rmse": 1 + i / 100, **ranking},
        }
        for i, name in enumerate(names)
    }


def _overlapping_tick_labels(figure) -> list[tuple[str, str]]:
    """The pairs of tick labels of one axis of ``figure`` whose drawn boxes overlap."""
    canvas = FigureCanvasAgg(figure)  # closed figures keep no drawing canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    overlaps = []
    for ax in figure.axes:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            shown = [
                label for label in labels if label.get_visible() and label.get_text()
            ]
            boxes = [label.get_window_extent(renderer) for label in shown]
            overlaps += [
                (shown[i].get_text(), shown[j].get_text())
                for i, j in itertools.combinations(range(len(shown)), 2)
                if boxes[i].overlaps(boxes[j])
            ]
    return overlaps


@pytest.mark.parametrize("plot", [plot_test_rmse, plot_ranking_metrics])
def test_no_two_tick_labels_overlap_however_many_entries(plot):
    for n_entries in (3, 16, 40):
        figure = plot(_many_entries(n_entries))
        assert not _overlapping_tick_labels(figure), (plot.__name__, n_entries)


def test_the_overlap_check_sees_labels_that_run_into_each_other():
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.bar([f"a_long_label_{i}" for i in range(8)], range(8))
    plt.close(figure)
    assert _overlapping_tick_labels(figure)


def test_the_ranking_figure_has_a_panel_per_metric_the_best_entry_at_the_top():
    metrics = {
        "popularity": {"test": dict.fromkeys(ranking_metric_names(10), 0.1)},
        "ease": {"test": dict.fromkeys(ranking_metric_names(10), 0.3)},
        "random": {"test": dict.fromkeys(ranking_metric_names(10), 0.01)},
    }
    figure = plot_ranking_metrics(metrics)
    _assert_closed_figure(figure, len(ranking_metric_names(10)))
    assert [ax.get_title() for ax in figure.axes] == ranking_metric_names(10)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "random",
        "popularity",
        "ease",
    ]
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([0.01, 0.1, 0.3])


def test_format_metrics_table(metrics):
    one_entry = {
        split: {"mse": 1.0, "rmse": 1.0, "mae": 0.6}
        for split in ("train", "val", "test")
    }
    table = format_metrics_table({"mean_baseline": one_entry})
    lines = table.splitlines()
    assert lines[0] == (
        "| Model | train MSE | val MSE | test MSE | train RMSE | val RMSE | test RMSE"
        " | train MAE | val MAE | test MAE |"
    )
    assert lines[2] == (
        "| mean_baseline | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000"
        " | 0.6000 | 0.6000 | 0.6000 |"
    )


def test_write_summary_has_sizes_metrics_and_figure_links(splits, metrics):
    summary = write_summary(
        "synthetic",
        splits["train"],
        splits["val"],
        splits["test"],
        metrics,
        ranking_comparison=COMPARISON,
        rating_scale=SCALE,
        evaluation=EVALUATION,
        reporting=reporting(**{"Loss curves": "loss_curves.png"}),
    )
    train = splits["train"]
    assert "Dataset: `synthetic`." in summary
    assert "Rating scale: 0.5 to 5 (as recorded at ingestion)." in summary
    assert (
        f"| train | {train.height} | {train['userId'].n_unique()}"
        f" | {train['movieId'].n_unique()} |"
    ) in summary
    assert all(f"| {entry} |" in summary for entry in ALL_ENTRIES)
    assert "- [Loss curves](loss_curves.png)" in summary
    assert ranker_verdict(COMPARISON) in summary


def test_write_summary_logs_each_entrys_test_results(splits, metrics, caplog):
    with caplog.at_level(logging.INFO):
        summary = write_summary(
            "synthetic",
            splits["train"],
            splits["val"],
            splits["test"],
            metrics,
            ranking_comparison=COMPARISON,
            rating_scale=SCALE,
            evaluation=EVALUATION,
            reporting=reporting(),
        )
    assert format_metrics_table(metrics) in summary
    # The console gets one line per entry, not the page.
    assert results_table(metrics) in caplog.text
    assert "## Figures" not in caplog.text
    for entry, by_split in metrics.items():
        (line,) = [
            row
            for row in results_table(metrics).splitlines()
            if row.startswith(f"{entry} ")
        ]
        if "rmse" in by_split.get("test", {}):
            assert f"{by_split['test']['rmse']:.4f}" in line


@pytest.mark.parametrize(
    ("ratings", "scale", "edges"),
    [
        # Half stars, 0.5 and 5 absent from the ratings: still one bin per value.
        ([1.0, 1.5, 4.5, 3.0], MOVIELENS_SCALE, HALF_STAR_BINS),
        ([1.0, 2.0, 7.0, 10.0], RatingScale(1, 10), np.arange(0.5, 11, 1.0)),
        # The step is the smallest gap between the ratings.
        ([1.0, 3.0, 5.0], RatingScale(1, 5), [0.0, 2.0, 4.0, 6.0]),
        (np.arange(101.0), RatingScale(0, 100), np.linspace(0, 100, 21)),
        # Few irregular values: one bin each, halfway edges, the outer ones the scale.
        ([1.0, 2.3, 4.0], RatingScale(0, 5), [0.0, 1.65, 3.15, 5.0]),
    ],
)
def test_rating_bins_follow_the_values_of_the_scale(ratings, scale, edges):
    np.testing.assert_allclose(rating_bins(np.asarray(ratings), scale), edges)


def _on_scale(scale, values, n_rows=2_000):
    """Every entry's test predictions: true ratings drawn from ``values``, predictions
    spread over ``scale``."""
    rng = np.random.default_rng(0)
    frames = {}
    for entry in ALL_ENTRIES:
        truth = rng.choice(values, n_rows)
        noise = rng.normal(0, (scale.max - scale.min) / 10, n_rows)
        frames[entry] = pl.DataFrame(
            {
                "userId": np.arange(n_rows) % 50,
                "movieId": np.arange(n_rows) // 50,
                "rating": pl.Series(truth, dtype=pl.Float32),
                "prediction": pl.Series(
                    np.clip(truth + noise, scale.min, scale.max), dtype=pl.Float32
                ),
            }
        )
    return frames


@pytest.mark.parametrize(
    ("scale", "values", "n_bins"),
    [
        (RatingScale(1, 10, inferred=True), np.arange(1.0, 11.0), 10),
        (RatingScale(0, 100), np.arange(0.0, 101.0), 20),
    ],
)
def test_rating_figures_render_on_other_scales(scale, values, n_bins):
    predictions = _on_scale(scale, values)
    recorded = scale.to_dict()
    histograms = {v: rating_histogram(predictions[v], recorded) for v in VARIANTS}
    counts = histograms[VARIANTS[0]]
    assert counts.height == n_bins
    # Every rating and every prediction falls in a bin.
    assert counts["true"].sum() == predictions[VARIANTS[0]].height
    assert counts["predicted"].sum() == predictions[VARIANTS[0]].height
    figure = plot_rating_histograms(recorded, **histograms)
    ax = figure.axes[0]
    assert len(ax.patches) == 2 * n_bins
    low, high = ax.get_xlim()
    assert (
        low <= scale.min
        and high >= scale.max
        and high - low <= 1.1 * (scale.max - scale.min + 1)
    )
    assert f"rating scale {scale.min:g}..{scale.max:g}" in figure.texts[0].get_text()
    by_rating = {e: rmse_by_rating(p, recorded) for e, p in predictions.items()}
    assert by_rating[VARIANTS[0]].height == min(values.size, n_bins)
    figure = plot_rmse_by_rating(**by_rating)
    assert len(figure.axes[0].lines[0].get_xdata()) == min(values.size, n_bins)


def test_the_summary_says_when_the_scale_was_inferred_and_the_threshold_used(
    splits, metrics
):
    summary = write_summary(
        "file",
        splits["train"],
        splits["val"],
        splits["test"],
        metrics,
        ranking_comparison=COMPARISON,
        rating_scale={"min": 1.0, "max": 10.0, "inferred": True},
        evaluation=EVALUATION,
        reporting=reporting(),
    )
    assert "Rating scale: 1 to 10 (inferred from the data)." in summary
    assert (
        "relevant: a test rating of at least 7.75 "
        "(`evaluation.ranking.relevance_fraction` 0.75 of the rating scale)"
    ) in summary
    stated = EVALUATION | {"ranking": {"relevance_threshold": 8.0}}
    summary = write_summary(
        "file",
        splits["train"],
        splits["val"],
        splits["test"],
        metrics,
        ranking_comparison=COMPARISON,
        rating_scale={"min": 1.0, "max": 10.0, "inferred": True},
        evaluation=stated,
        reporting=reporting(),
    )
    assert "at least 8 (`evaluation.ranking.relevance_threshold`)" in summary
