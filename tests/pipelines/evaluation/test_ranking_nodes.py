"""The ranking nodes of evaluation and their place in metrics.json, summary.md and MLflow."""

from __future__ import annotations

import json
import logging

import numpy as np
import polars as pl
import pytest

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.evaluation.names import ranking_metric_names
from rating_prediction.evaluation.ranking import (
    ranking_metrics,
    ranking_task,
)
from rating_prediction.models.config import load_trained_model
from rating_prediction.models.scoring import blended_scorer, log_count_scorer
from rating_prediction.parameters import ParameterError
from rating_prediction.parameters.training import EaseParameters
from rating_prediction.pipelines.evaluation import nodes
from rating_prediction.pipelines.evaluation.nodes import (
    build_ranking_task,
    compare_best_ranker_to_popularity,
    gather_metrics,
    gather_ranking_metrics,
    rank_at_random,
    rank_by_popularity,
    rank_with_model,
)
from rating_prediction.pipelines.reporting.figures import plot_ranking_metrics
from rating_prediction.pipelines.reporting.summary import (
    format_metrics_table,
    format_ranking_table,
    popularity_verdict,
    ranker_verdict,
)
from rating_prediction.training.data import TrainingData
from rating_prediction.training.ease import fit_variant as fit_ease
from tests.fakes import N_MOVIES, N_USERS, bias_splits, fake_trained_model

EVALUATION = {
    "prediction_batch_size": 50,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": 5, "relevance_threshold": 4.0, "random_seed": 3},
}
NAMES = ranking_metric_names(5)
SCALE = MOVIELENS_SCALE.to_dict()


@pytest.fixture(scope="module")
def splits():
    return bias_splits()


@pytest.fixture(scope="module")
def task(splits):
    return build_ranking_task(
        splits["train"], splits["val"], splits["test"], EVALUATION, SCALE
    )


def _blend_at(weight):
    return {
        **EVALUATION,
        "ranking": {**EVALUATION["ranking"], "popularity_weight": weight},
    }


def test_every_ranking_node_reports_the_five_metrics(task):
    config, weights = fake_trained_model("biased_mf")
    own, blend = rank_with_model(config, weights, task, _blend_at(1))
    for result in (
        own,
        blend,
        rank_by_popularity(task, EVALUATION),
        rank_at_random(task, EVALUATION),
    ):
        assert list(result) == ["test"]
        assert list(result["test"]) == NAMES
        assert all(0 <= value <= 1 for value in result["test"].values())
    # Seeded: the same random lists twice.
    assert rank_at_random(task, EVALUATION) == rank_at_random(task, EVALUATION)


def test_blend_of_weight_one_is_the_popularity_list_and_zero_is_off(task):
    config, weights = fake_trained_model("biased_mf")
    _, blend = rank_with_model(config, weights, task, _blend_at(1))
    popularity = rank_by_popularity(task, EVALUATION)
    assert blend["test"]["ndcg@5"] == pytest.approx(popularity["test"]["ndcg@5"])
    own, off = rank_with_model(config, weights, task, _blend_at(0))
    assert off == {}
    assert own == rank_with_model(config, weights, task, _blend_at(1))[0]


def test_the_model_scores_each_block_once_for_its_ranking_and_its_blend(
    task, monkeypatch
):
    """The blend's figures are those of ranking the blended scores alone, and the
    model scored each block of users once for both rankings."""
    config, weights = fake_trained_model("biased_mf")
    scored_blocks = []
    model_scorer = nodes.model_scorer

    def counting_scorer(model, candidates):
        score = model_scorer(model, candidates)

        def counted(users):
            scored_blocks.append(users.copy())
            return score(users)

        return counted

    monkeypatch.setattr(nodes, "model_scorer", counting_scorer)
    own, blend = rank_with_model(config, weights, task, _blend_at(0.3))
    # Several blocks, each user scored once: not once per ranking.
    assert len(scored_blocks) > 1
    np.testing.assert_array_equal(np.concatenate(scored_blocks), task.users)
    model = load_trained_model(config, weights)
    alone = blended_scorer(
        model_scorer(model, task.candidates),
        log_count_scorer(task.candidate_counts),
        0.3,
    )
    assert blend["test"] == ranking_metrics(
        task, alone, 5, EVALUATION["prediction_batch_size"]
    )
    assert own["test"] == ranking_metrics(
        task,
        model_scorer(model, task.candidates),
        5,
        EVALUATION["prediction_batch_size"],
    )


def test_by_default_the_blend_takes_the_weight_the_model_chose_on_val(task):
    """``popularity_weight: val`` reads the model's own ``popularity_weight``: at 1
    the blend is the popularity list, at 0 the model's own ranking."""
    config, weights = fake_trained_model("biased_mf")
    chosen_on_val = {**EVALUATION, "ranking": {**EVALUATION["ranking"]}}
    chosen_on_val["ranking"].pop("popularity_weight", None)
    popularity = rank_by_popularity(task, EVALUATION)["test"]["ndcg@5"]
    _, blend = rank_with_model(
        config | {"popularity_weight": 1.0}, weights, task, chosen_on_val
    )
    assert blend["test"]["ndcg@5"] == pytest.approx(popularity)
    # Chosen 0: the blend is the model's own ranking; none chosen: no entry.
    own, blend = rank_with_model(
        config | {"popularity_weight": 0.0}, weights, task, chosen_on_val
    )
    assert blend == own
    _, blend = rank_with_model(
        config | {"popularity_weight": None}, weights, task, chosen_on_val
    )
    assert blend == {}
    # A stated weight wins over the model's.
    _, stated_blend = rank_with_model(
        config | {"popularity_weight": 0.0}, weights, task, _blend_at(1)
    )
    assert stated_blend["test"]["ndcg@5"] == pytest.approx(popularity)


def test_a_user_sample_ranks_that_many_users_seeded(splits, task):
    sampled = {**EVALUATION, "ranking": {**EVALUATION["ranking"], "max_users": 7}}
    first = build_ranking_task(
        splits["train"], splits["val"], splits["test"], sampled, SCALE
    )
    again = build_ranking_task(
        splits["train"], splits["val"], splits["test"], sampled, SCALE
    )
    assert first.users.size == 7
    assert set(first.users) <= set(task.users)
    np.testing.assert_array_equal(first.users, again.users)
    config, weights = fake_trained_model("biased_mf")
    assert rank_with_model(config, weights, first, sampled) == rank_with_model(
        config, weights, again, sampled
    )


def test_ranking_metrics_join_metrics_json_mlflow_and_the_summary():
    errors = {"train": {"mse": 1.0, "rmse": 1.0, "mae": 1.0}}
    errors = {**errors, "val": errors["train"], "test": dict(errors["train"])}
    ranking = gather_ranking_metrics(
        biased_mf={"test": dict.fromkeys(NAMES, 0.1)},
        popularity={"test": dict.fromkeys(NAMES, 0.2)},
        biased_mf_popularity_blend={},
    )
    metrics, mlflow = gather_metrics(ranking_metrics=ranking, biased_mf=errors)
    assert metrics["biased_mf"]["test"] == {
        **errors["test"],
        **dict.fromkeys(NAMES, 0.1),
    }
    assert metrics["popularity"] == {"test": dict.fromkeys(NAMES, 0.2)}
    assert "biased_mf_popularity_blend" not in metrics
    assert mlflow["biased_mf.test.ndcg_at_5"] == {"value": 0.1, "step": 0}
    assert "| popularity |" not in format_metrics_table(metrics)
    assert "| popularity | 0.2000 |" in format_ranking_table(metrics)
    verdict = popularity_verdict(metrics)
    assert verdict.startswith("**No variant beats the popularity list on ndcg@5**")
    assert "0.1000 against 0.2000" in verdict
    assert "trained to predict ratings, not to rank" in verdict
    assert plot_ranking_metrics(metrics).axes
    # A ranker that loses is not excused as a rating model.
    with_ranker = metrics | {"ease": {"test": dict.fromkeys(NAMES, 0.15)}}
    verdict = popularity_verdict(with_ranker)
    assert "the best, `ease`, reaches 0.1500 against 0.2000" in verdict
    assert "trained to predict ratings" not in verdict


def _history(splits) -> pl.DataFrame:
    return pl.concat([splits["train"], splits["val"]])


def test_the_history_is_train_and_val_for_candidates_exclusion_and_popularity(splits):
    """Test ranking knows what happened before test: a user's val movies are never
    candidates for that user, and popularity counts the val ratings too; the
    candidates stay the movies seen in train (the catalogue the models were fitted on
    and the served model recommends from), so a movie rated only in val is none."""
    new_movie = int(_history(splits)["movieIdMapped"].max()) + 1
    first = splits["val"].head(1)
    splits = {
        **splits,
        "val": pl.concat(
            [
                splits["val"],
                first.with_columns(pl.lit(new_movie).alias("movieIdMapped")),
            ]
        ),
    }
    task = build_ranking_task(
        splits["train"], splits["val"], splits["test"], EVALUATION, SCALE
    )
    assert new_movie not in task.candidates
    np.testing.assert_array_equal(
        task.candidates, np.unique(splits["train"]["movieIdMapped"])
    )
    history = _history(splits).join(
        pl.DataFrame({"userIdMapped": task.users}), on="userIdMapped", how="semi"
    )
    expected_keys = np.sort(
        history["userIdMapped"].to_numpy().astype(np.int64) * task.n_keys
        + history["movieIdMapped"].to_numpy()
    )
    np.testing.assert_array_equal(task.history_keys, expected_keys)
    counts = _history(splits)["movieIdMapped"].value_counts()
    expected_counts = dict(zip(counts["movieIdMapped"], counts["count"]))
    assert [expected_counts[m] for m in task.candidates] == list(task.candidate_counts)


def _with_ranking(**ranking) -> dict:
    return {**EVALUATION, "ranking": {**EVALUATION["ranking"], **ranking}}


def _relevant_keys(splits, evaluation, scale) -> np.ndarray:
    return build_ranking_task(
        splits["train"], splits["val"], splits["test"], evaluation, scale
    ).relevant_keys


def test_the_default_fraction_of_movielens_scale_keeps_the_former_threshold(splits):
    """0.75 of 0.5..5 is 3.875: the 4 stars and up, the relevant set of 4.0."""
    by_fraction = _with_ranking(relevance_threshold=None, relevance_fraction=0.75)
    np.testing.assert_array_equal(
        _relevant_keys(splits, by_fraction, SCALE),
        ranking_task(_history(splits), splits["test"], 4.0).relevant_keys,
    )
    # Another fraction is another threshold: fewer relevant ratings at 0.85 (4.325).
    higher = _with_ranking(relevance_threshold=None, relevance_fraction=0.85)
    assert (
        0
        < _relevant_keys(splits, higher, SCALE).size
        < _relevant_keys(splits, by_fraction, SCALE).size
    )


def test_the_threshold_from_a_fraction_follows_the_data_sets_scale(splits):
    """On whole stars 1..10, 0.75 is 7.75: the 8 stars and up are relevant."""
    doubled = {
        name: frame.with_columns(pl.col("rating") * 2) for name, frame in splits.items()
    }
    ten_stars = {"min": 1.0, "max": 10.0, "inferred": True}
    by_fraction = _with_ranking(relevance_threshold=None)
    expected = ranking_task(_history(doubled), doubled["test"], 8.0).relevant_keys
    np.testing.assert_array_equal(
        _relevant_keys(doubled, by_fraction, ten_stars), expected
    )
    # A stated threshold is used as it is, on the data's scale.
    stated = _with_ranking(relevance_threshold=6.0)
    np.testing.assert_array_equal(
        _relevant_keys(doubled, stated, ten_stars),
        ranking_task(_history(doubled), doubled["test"], 6.0).relevant_keys,
    )


@pytest.mark.parametrize("threshold", [0.5, 0.2, 5.5, 8.0])
def test_a_stated_threshold_off_the_data_sets_scale_is_refused(splits, threshold):
    with pytest.raises(ParameterError) as error:
        build_ranking_task(
            splits["train"],
            splits["val"],
            splits["test"],
            _with_ranking(relevance_threshold=threshold),
            SCALE,
        )
    message = str(error.value)
    assert "'evaluation.ranking.relevance_threshold'" in message
    assert f"{threshold} is not on the data set's rating scale 0.5..5.0" in message


def fitted_ease(splits, best_val_ndcg: float):
    """EASE^R fitted on the splits' train: a ranker that beats popularity here."""
    data = TrainingData(
        train=splits["train"], val=splits["val"], n_users=N_USERS, n_movies=N_MOVIES
    )
    weights, config, _ = fit_ease("ease", EaseParameters(regularization=1.0), data)
    return config.model_dump() | {"best_val_ndcg": best_val_ndcg}, weights


def fake_ranker(variant: str, best_val_ndcg: float):
    config, weights = fake_trained_model(variant, seed=5)
    return config | {"best_val_ndcg": best_val_ndcg}, weights


def test_the_best_ranker_by_val_is_compared_with_popularity_user_by_user(splits, task):
    ease = fitted_ease(splits, best_val_ndcg=0.4)
    models = {"ease": ease, "als": fake_ranker("als", 0.1)}
    comparison = compare_best_ranker_to_popularity(task, EVALUATION, *models.values())
    own = rank_with_model(*ease, task, EVALUATION)[0]["test"]["ndcg@5"]
    popularity = rank_by_popularity(task, EVALUATION)["test"]["ndcg@5"]
    assert comparison["best_ranker"] == "ease"
    assert comparison["metric"] == "ndcg@5"
    assert comparison["users"] == task.users.size
    assert comparison["best_ranker_mean"] == pytest.approx(own)
    assert comparison["popularity_mean"] == pytest.approx(popularity)
    assert comparison["mean_difference"] == pytest.approx(own - popularity)
    assert (
        comparison["ci_low"] <= comparison["mean_difference"] <= comparison["ci_high"]
    )
    assert comparison["significant"] == (comparison["p_value"] < 0.05)


def test_the_best_ranker_is_chosen_on_val_not_on_test(splits, task):
    """A ranker with the higher val NDCG@K is the one compared, even when it ranks
    test worse: test never chooses."""
    models = {"ease": fitted_ease(splits, 0.1), "als": fake_ranker("als", 0.9)}
    comparison = compare_best_ranker_to_popularity(task, EVALUATION, *models.values())
    assert comparison["best_ranker"] == "als"
    als = rank_with_model(*models["als"], task, EVALUATION)[0]["test"]["ndcg@5"]
    assert comparison["best_ranker_mean"] == pytest.approx(als)


@pytest.mark.parametrize(
    ("figures", "verdict"),
    [
        ((0.12, 0.10, 0.14, 1e-20, True), "**a significant lead**"),
        ((0.01, -0.01, 0.03, 0.3, False), "**not a significant difference**"),
        ((-0.05, -0.08, -0.02, 0.001, True), "**significantly behind"),
    ],
)
def test_the_summary_says_whether_the_best_rankers_lead_is_significant(
    figures, verdict
):
    difference, low, high, p_value, significant = figures
    text = ranker_verdict(
        {
            "metric": "ndcg@10",
            "best_ranker": "ease",
            "users": 610,
            "best_ranker_mean": 0.1 + difference,
            "popularity_mean": 0.1,
            "mean_difference": difference,
            "ci_low": low,
            "ci_high": high,
            "p_value": p_value,
            "significant": significant,
        }
    )
    assert "`ease`" in text and "val ndcg@10" in text
    assert f"{difference:+.4f}" in text and "610 users" in text
    assert f"p = {p_value:.2g}" in text
    assert verdict in text


def test_one_ranked_user_is_too_few_to_test_and_the_summary_says_so(splits, caplog):
    one_user = {**EVALUATION, "ranking": {**EVALUATION["ranking"], "max_users": 1}}
    task = build_ranking_task(
        splits["train"], splits["val"], splits["test"], one_user, SCALE
    )
    assert task.users.size == 1
    with caplog.at_level(logging.WARNING):
        comparison = compare_best_ranker_to_popularity(
            task, one_user, fitted_ease(splits, 0.4)
        )
    assert comparison["users"] == 1
    assert comparison["p_value"] is None and comparison["significant"] is False
    assert comparison["mean_difference"] == pytest.approx(
        comparison["best_ranker_mean"] - comparison["popularity_mean"]
    )
    json.dumps(comparison, allow_nan=False)  # a plain JSON file, no NaN
    assert "too few to test" in caplog.text
    assert "too few to test" in ranker_verdict(comparison)
