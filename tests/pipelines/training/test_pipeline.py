"""The training pipeline run by Kedro, with one process and with two (DDP)."""

from __future__ import annotations

import copy

import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from rating_prediction.data.schema import MOVIELENS_SCALE, USERS_SCHEMA
from rating_prediction.models.variants import VARIANTS
from rating_prediction.pipelines.training import create_pipeline
from rating_prediction.pipelines.training.pipeline import create_variant_pipeline
from tests.fakes import fake_movies

SPLIT_INPUTS = ("train_ratings", "val_ratings", "user_mapping", "movie_mapping")
# A ranker's val NDCG@K is measured with the evaluation's ranking settings.
EVALUATION = {
    "prediction_batch_size": 10_000,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": 5},
}


def users_without_demographics(user_mapping: pl.DataFrame) -> pl.DataFrame:
    """The ``users`` table of a release without a users file: every column null."""
    return user_mapping.select(
        pl.lit(None, dtype).alias(column) if column != "userId" else pl.col(column)
        for column, dtype in USERS_SCHEMA.items()
    )


def _run(splits, training_parameters, variants=VARIANTS):
    pipeline = sum(
        (create_variant_pipeline(variant) for variant in variants), Pipeline([])
    )
    catalog = DataCatalog({name: MemoryDataset(splits[name]) for name in SPLIT_INPUTS})
    catalog["movies"] = MemoryDataset(fake_movies(splits["movie_mapping"]))
    catalog["users"] = MemoryDataset(users_without_demographics(splits["user_mapping"]))
    catalog["rating_scale"] = MemoryDataset(MOVIELENS_SCALE.to_dict())
    catalog["params:evaluation"] = MemoryDataset(EVALUATION)
    for variant in variants:
        catalog[f"params:training.{variant}"] = MemoryDataset(
            training_parameters[variant]
        )
    SequentialRunner().run(pipeline, catalog)
    return catalog


def test_one_namespace_per_variant_with_the_contract_outputs():
    pipeline = create_pipeline()
    assert {node.name for node in pipeline.nodes} == {
        f"{variant}.train_model" for variant in VARIANTS
    }
    for variant in VARIANTS:
        assert {
            f"{variant}.model_weights",
            f"{variant}.model_config",
            f"{variant}.training_history",
        } <= pipeline.outputs()
        assert f"params:training.{variant}" in pipeline.inputs()


def test_pipeline_trains_every_variant(splits, training_parameters):
    for variant in ("inner_sigmoid", "biased_mf"):
        training_parameters[variant]["max_epochs"] = 6
    training_parameters["bayesian_fm"] |= {"n_iter": 6, "n_kept_samples": 4}
    catalog = _run(splits, training_parameters)
    for variant in VARIANTS:
        config = catalog.load(f"{variant}.model_config")
        assert config["variant"] == variant
        # A closed form (ease) has one row: no epochs.
        expected_rows = 6 if VARIANTS[variant].predicts_ratings else 1
        assert catalog.load(f"{variant}.training_history").height == expected_rows
        assert catalog.load(f"{variant}.model_weights")
        if not VARIANTS[variant].predicts_ratings:
            assert 0 < config["best_val_ndcg"] <= 1
            assert config["refit_on_train_val"] is True


@pytest.mark.slow
def test_two_process_ddp_reaches_the_quality_of_one_process(
    splits, training_parameters
):
    single = copy.deepcopy(training_parameters)
    # The refit is a second fit; the comparison is about the first one.
    single["biased_mf"]["refit_on_train_val"] = False
    single["biased_mf"]["model"]["sparse"] = False
    distributed = copy.deepcopy(single)
    distributed["biased_mf"]["trainer"] |= {
        "accelerator": "cpu",
        "devices": 2,
        "strategy": "ddp_spawn",
    }
    # Each process sees half of every epoch: half the batch keeps the number of steps.
    distributed["biased_mf"]["batch_size"] //= 2
    one = _run(splits, single, ("biased_mf",)).load("biased_mf.model_config")
    two = _run(splits, distributed, ("biased_mf",)).load("biased_mf.model_config")
    assert two["best_val_loss"] == pytest.approx(one["best_val_loss"], rel=0.05)


@pytest.mark.slow
def test_sparse_gradients_with_several_processes_are_a_clear_error(
    splits, training_parameters
):
    options = copy.deepcopy(training_parameters)
    options["biased_mf"] |= {
        "max_epochs": 1,
        "min_epochs": 1,
        "refit_on_train_val": False,
    }
    options["biased_mf"]["trainer"] |= {
        "accelerator": "cpu",
        "devices": 2,
        "strategy": "ddp_spawn",
    }
    with pytest.raises(Exception, match="model.sparse: false"):
        _run(splits, options, ("biased_mf",))
