"""The markdown of ``metrics_summary.json``: intervals per entry and paired tests."""

from __future__ import annotations

from typing import Any

# The headline metric: the one the lead sentence is about.
HEADLINE_METRIC = "rmse"


def format_summary(summary: dict[str, Any]) -> str:
    """Markdown: the folds, a table of test metrics (mean ± sd and the t-interval)
    per entry, the paired comparisons and whether the best variant's lead holds."""
    confidence = round(100 * summary["confidence"])
    descriptions = ", ".join(
        f"{fold}: {text}" for fold, text in summary["fold_descriptions"].items()
    )
    lines = [
        "# Cross-validation summary",
        "",
        f"Dataset `{summary['dataset']}`, scheme `{summary['scheme']}`, "
        f"{len(summary['folds'])} folds ({descriptions}).",
        "",
        f"Test metrics over the folds: mean ± sd [{confidence}% t-interval of the "
        "mean]. Errors in stars, lower is better; ranking metrics higher is better.",
        "",
        *_interval_table(summary),
        "",
        *lead_sentences(summary),
        "",
        f"## Paired comparisons (paired t-test over folds, {confidence}%)",
        "",
        *_comparison_table(summary),
        "",
    ]
    return "\n".join(lines)


def lead_sentences(summary: dict[str, Any]) -> list[str]:
    """Whether the best variant's lead over the next one and over the best baseline is
    significant, on the headline metric and on NDCG."""
    ndcg = [metric for metric in summary["comparisons"] if metric.startswith("ndcg@")]
    sentences = []
    for metric in [HEADLINE_METRIC, *ndcg]:
        comparison = summary["comparisons"].get(metric)
        if not comparison or not comparison["best_variant"]:
            continue
        best = comparison["best_variant"]
        for other in (comparison["next_variant"], comparison["best_baseline"]):
            test = _find_test(comparison, best, other)
            if test is not None:
                sentences.append(_lead_sentence(summary, metric, best, other, test))
    return sentences


def _lead_sentence(
    summary: dict[str, Any], metric: str, best: str, other: str, test: dict[str, Any]
) -> str:
    verdict = "significant" if test["significant"] else "not significant"
    name = metric.upper() if "@" not in metric else metric
    return (
        f"- The best variant by mean test {name}, `{best}`, against `{other}`: "
        f"paired difference {test['mean_difference']:+.4f} ({_percent(summary)} "
        f"interval {test['ci_low']:+.4f} to {test['ci_high']:+.4f}, "
        f"p = {test['p_value']:.3g}): the lead is **{verdict}** at "
        f"{round(100 * (1 - summary['confidence']))}%."
    )


def _percent(summary: dict[str, Any]) -> str:
    return f"{round(100 * summary['confidence'])}%"


def _interval_table(summary: dict[str, Any]) -> list[str]:
    metrics = list(summary["comparisons"])
    header = ["Entry", *(m.upper() if "@" not in m else m for m in metrics)]
    rows = []
    for entry, splits in summary["entries"].items():
        test = splits.get("test", {})
        rows.append([entry, *(_cell(test[m]) if m in test else "–" for m in metrics)])
    return _table(header, rows)


def _comparison_table(summary: dict[str, Any]) -> list[str]:
    header = [
        "Metric",
        "First",
        "Second",
        "Mean difference",
        "Interval",
        "p",
        "Significant",
    ]
    rows = [
        [
            metric,
            test["first"],
            test["second"],
            f"{test['mean_difference']:+.4f}",
            f"{test['ci_low']:+.4f} to {test['ci_high']:+.4f}",
            f"{test['p_value']:.3g}",
            "yes" if test["significant"] else "no",
        ]
        for metric, comparison in summary["comparisons"].items()
        for test in comparison["paired_tests"]
    ]
    return _table(header, rows)


def _find_test(comparison: dict[str, Any], first: str, second: str | None) -> Any:
    for test in comparison["paired_tests"]:
        if (test["first"], test["second"]) == (first, second):
            return test
    return None


def _cell(values: dict[str, float]) -> str:
    return (
        f"{values['mean']:.4f} ± {values['sd']:.4f} "
        f"[{values['ci_low']:.4f}, {values['ci_high']:.4f}]"
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [header, ["---"] * len(header), *rows]
    return ["| " + " | ".join(line) + " |" for line in lines]
