"""Tuning a ranker: the study maximises val NDCG@K, the figure that chooses the served
ranker, and never reads test."""

from __future__ import annotations

import optuna
import pytest

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.models.variants import variant
from rating_prediction.parameters import EaseParameters
from rating_prediction.pipelines.training.val_ranking import fit_ranker
from rating_prediction.pipelines.tuning.nodes import tune_hyperparameters
from rating_prediction.training.data import TrainingData
from tests.fakes import fake_movies, learnable_splits

EVALUATION = {
    "prediction_batch_size": 10_000,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": 5, "relevance_threshold": 4.0},
}


def test_a_ranker_study_maximises_val_ndcg(tmp_path):
    splits = learnable_splits()
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    settings = {
        "variant": "ease",
        "n_trials": 3,
        "study_name": "ease",
        "storage": storage,
        "search_spaces": {
            "ease": {
                "regularization": {
                    "type": "float",
                    "low": 1.0,
                    "high": 1000.0,
                    "log": True,
                }
            }
        },
    }
    tuned, trials = tune_hyperparameters(
        train_ratings=splits["train_ratings"],
        val_ratings=splits["val_ratings"],
        user_mapping=splits["user_mapping"],
        movie_mapping=splits["movie_mapping"],
        movies=fake_movies(splits["movie_mapping"]),
        rating_scale=MOVIELENS_SCALE.to_dict(),
        tuning_parameters=settings,
        training_parameters={"ease": {"regularization": 200.0}},
        evaluation_parameters=EVALUATION,
    )
    study = optuna.load_study(study_name="ease", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert trials.height == 3
    assert tuned["_tuning"]["best_val_ndcg_at_5"] == pytest.approx(max(trials["value"]))
    # The best value is the val NDCG@5 the training node records for that setting.
    best = tuned["training"]["ease"]["regularization"]
    data = TrainingData(
        train=splits["train_ratings"],
        val=splits["val_ratings"],
        n_users=splits["user_mapping"].height,
        n_movies=splits["movie_mapping"].height,
    )
    _, config, _ = fit_ranker(
        variant("ease"), EaseParameters(regularization=best), data, EVALUATION
    )
    assert config.best_val_ndcg == pytest.approx(study.best_value, abs=1e-6)
