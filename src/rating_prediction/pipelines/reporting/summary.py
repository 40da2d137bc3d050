"""The ``reporting`` pipeline's one-page markdown summary: the metrics tables, the
ranking against the popularity list, and links to the figures."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from rating_prediction.data.schema import SPLITS, RatingScale
from rating_prediction.evaluation.metrics import METRICS
from rating_prediction.evaluation.names import (
    BLEND_SUFFIX,
    RANKING_BASELINES,
    is_ranking_metric,
)
from rating_prediction.parameters import (
    EvaluationParameters,
    RankingParameters,
    ReportingParameters,
    parse,
)

logger = logging.getLogger(__name__)
# A figure an entry does not have (a ranker's RMSE): shown, never invented.
NO_FIGURE = "–"


def write_summary(
    dataset_name: str,
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    test_ratings: pl.DataFrame,
    metrics: dict[str, dict[str, dict[str, float]]],
    *,
    ranking_comparison: dict[str, Any],
    rating_scale: dict[str, Any],
    evaluation: dict[str, Any],
    reporting: dict[str, Any],
) -> str:
    """One-page markdown summary: the data set and its rating scale, split sizes, the
    metrics tables (with the relevance threshold the ranking used), whether the best
    ranker's lead over the popularity list is significant (``ranking_comparison``) and
    links to the figures (``reporting.summary_figures``: title to path relative to the
    summary).

    Its results, each entry's test RMSE and ranking, are also logged, so they end
    the ``kedro run`` output.
    """
    figures = parse(ReportingParameters, reporting, "reporting").summary_figures
    scale = RatingScale.from_dict(rating_scale)
    ranking = parse(EvaluationParameters, evaluation, "evaluation").ranking
    size_rows = _size_rows([train_ratings, val_ratings, test_ratings])
    summary = "\n".join(
        [
            "# Rating prediction: summary",
            "",
            f"Dataset: `{dataset_name}`. {describe_scale(scale)}",
            "",
            "## Splits",
            "",
            _markdown_table(["Split", "Ratings", "Users", "Movies"], size_rows),
            "",
            "## Metrics",
            "",
            "Errors in stars (MSE in stars squared); lower is better.",
            "",
            format_metrics_table(metrics),
            "",
            *_ranking_section(metrics, ranking_comparison, relevance(ranking, scale)),
            "## Figures",
            "",
            *(f"- [{title}]({path})" for title, path in figures.items()),
            "",
        ]
    )
    logger.info("Results on the test split:\n%s", results_table(metrics))
    return summary


def results_table(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    """Each entry's test RMSE and test ranking metrics that are at K (``-`` where it
    has none), one line each: the console's account of a run."""
    tests = {entry: by_split.get("test", {}) for entry, by_split in metrics.items()}
    ranking = sorted({name for test in tests.values() for name in test if "@" in name})
    columns = ["rmse", *ranking]
    width = max(len(entry) for entry in tests)
    lines = [f"{'':{width}}  " + "  ".join(f"{name:>12}" for name in columns)]
    for entry, test in tests.items():
        values = [
            f"{test[name]:12.4f}" if name in test else f"{'-':>12}" for name in columns
        ]
        lines.append(f"{entry:{width}}  " + "  ".join(values))
    return "\n".join(lines)


def _size_rows(splits: list[pl.DataFrame]) -> list[list[str]]:
    """Ratings, users and movies of each split, one table row each."""
    return [
        [
            split,
            f"{frame.height:,}",
            f"{frame['userId'].n_unique():,}",
            f"{frame['movieId'].n_unique():,}",
        ]
        for split, frame in zip(SPLITS, splits)
    ]


def format_metrics_table(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table of every error metric on every split, one row per model or
    baseline that predicts ratings, and one of "–" per model variant that only ranks
    (a ranker such as ``ease``: its figures are in the ranking table). The ranking
    baselines and the popularity blends are only in the ranking table."""
    header = ["Model"] + [
        f"{split} {metric.upper()}" for metric in METRICS for split in SPLITS
    ]
    rows = [
        [entry]
        + [
            f"{by_split[split][metric]:.4f}" if rates else NO_FIGURE
            for metric in METRICS
            for split in SPLITS
        ]
        for entry, by_split in metrics.items()
        for rates in [_predicts_ratings(by_split)]
        if rates or _ranking_variant(entry, by_split)
    ]
    return _markdown_table(header, rows)


def _predicts_ratings(by_split: dict[str, dict[str, float]]) -> bool:
    return all(
        metric in by_split.get(split, {}) for metric in METRICS for split in SPLITS
    )


def _ranking_variant(entry: str, by_split: dict[str, dict[str, float]]) -> bool:
    """An entry with ranking metrics only that is neither a ranking baseline nor a
    popularity blend: a model variant that ranks but predicts no ratings."""
    test = by_split.get("test", {})
    return (
        entry not in RANKING_BASELINES
        and not entry.endswith(BLEND_SUFFIX)
        and bool(test)
        and all(is_ranking_metric(name) for name in test)
    )


def format_ranking_table(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table of the test ranking metrics, one row per entry that has them."""
    ranked = {
        entry: by_split["test"]
        for entry, by_split in metrics.items()
        if any(is_ranking_metric(name) for name in by_split.get("test", {}))
    }
    names = [n for n in next(iter(ranked.values()), {}) if is_ranking_metric(n)]
    rows = [
        [entry] + [f"{test[n]:.4f}" for n in names] for entry, test in ranked.items()
    ]
    return _markdown_table(["Model", *names], rows)


def popularity_verdict(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    """Whether the best variant's own top-K lists (what the served model recommends),
    and the best popularity blend, beat the popularity list on NDCG."""
    popular = metrics.get("popularity", {}).get("test", {})
    ndcg = next((name for name in popular if name.startswith("ndcg@")), None)
    scored = {
        entry: by_split["test"][ndcg]
        for entry, by_split in metrics.items()
        if ndcg and entry not in RANKING_BASELINES and ndcg in by_split.get("test", {})
    }
    own = {e: v for e, v in scored.items() if not e.endswith(BLEND_SUFFIX)}
    if not own:
        return ""
    best = max(own, key=own.get)
    versus = f"{own[best]:.4f} against {popular[ndcg]:.4f}"
    if own[best] > popular[ndcg]:
        sentence = f"The best variant, `{best}`, beats the popularity list on {ndcg}: {versus}."
    else:
        sentence = (
            f"**No variant beats the popularity list on {ndcg}**: the best, `{best}`, "
            f"reaches {versus} for the most-rated movies recommended to everyone."
        )
        if "rmse" in metrics[best]["test"]:
            sentence += (
                " The rating models are trained to predict ratings, not to rank "
                "(docs/results.md, Ranking)."
            )
    blends = {e: v for e, v in scored.items() if e.endswith(BLEND_SUFFIX)}
    if blends:
        blend = max(blends, key=blends.get)
        beats = "beats" if blends[blend] > popular[ndcg] else "does not beat"
        sentence += (
            f" With `evaluation.ranking.popularity_weight`, `{blend}` {beats} it: "
            f"{blends[blend]:.4f}."
        )
    return sentence


def ranker_verdict(comparison: dict[str, Any]) -> str:
    """The best ranker (by val NDCG@K: the served one) against the popularity list on
    test, user by user, and whether its lead is significant."""
    metric, best = comparison["metric"], comparison["best_ranker"]
    lead = comparison["mean_difference"]
    if comparison["p_value"] is None:
        return (
            f"The best ranker by val {metric}, `{best}`, was ranked on test for "
            f"{comparison['users']} user(s): too few to test its lead over the "
            "popularity list."
        )
    if comparison["significant"] and lead > 0:
        verdict = "**a significant lead**"
    elif comparison["significant"]:
        verdict = "**significantly behind the popularity list**"
    else:
        verdict = "**not a significant difference**"
    return (
        f"The best ranker by val {metric}, `{best}` (the one the served model "
        f"recommends with), reaches {comparison['best_ranker_mean']:.4f} on test "
        f"against the popularity list's {comparison['popularity_mean']:.4f}: "
        f"{lead:+.4f} (95% interval {comparison['ci_low']:+.4f} to "
        f"{comparison['ci_high']:+.4f}; paired t-test over {comparison['users']:,} "
        f"users, p = {comparison['p_value']:.2g}), {verdict}."
    )


def describe_scale(scale: RatingScale) -> str:
    """The rating scale in a sentence, saying whether it was inferred from the data."""
    source = "inferred from the data" if scale.inferred else "as recorded at ingestion"
    return f"Rating scale: {scale.min:g} to {scale.max:g} ({source})."


def relevance(ranking: RankingParameters, scale: RatingScale) -> str:
    """The relevance threshold the ranking used, and where it came from."""
    threshold = ranking.threshold(scale)
    if ranking.relevance_threshold is not None:
        return f"{threshold:g} (`evaluation.ranking.relevance_threshold`)"
    return (
        f"{threshold:g} (`evaluation.ranking.relevance_fraction` "
        f"{ranking.relevance_fraction:g} of the rating scale)"
    )


def _ranking_section(
    metrics: dict[str, dict[str, dict[str, float]]],
    ranking_comparison: dict[str, Any],
    relevant_from: str,
) -> list[str]:
    return [
        "## Ranking",
        "",
        "Top-K recommendations on the test split (relevant: a test rating of at "
        f"least {relevant_from}; candidates: movies seen in train that the user "
        "has not rated in train or val); higher is better.",
        "",
        format_ranking_table(metrics),
        "",
        popularity_verdict(metrics),
        "",
        ranker_verdict(ranking_comparison),
        "",
    ]


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)
