"""The variant registry against the parameter models and the conf files: a variant is
one entry, and nothing else may know of one the registry does not."""

import inspect

import pytest

from rating_prediction.models.config import ModelConfig, build_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.variants import (
    VARIANTS,
    UnknownVariantError,
    variant,
    variants_that,
)
from rating_prediction.parameters import TrainingParameters, parse
from tests.training.fixtures import project_training_parameters


def test_every_variant_has_a_training_block_with_its_parameter_model():
    fields = TrainingParameters.model_fields
    assert list(fields) == list(VARIANTS)
    for name, entry in VARIANTS.items():
        assert entry.name == name
        assert fields[name].annotation is entry.parameters


def test_the_conf_files_hold_one_valid_block_per_variant():
    blocks = {
        name: block
        for name, block in project_training_parameters().items()
        if not name.startswith("_")
    }
    assert set(blocks) == set(VARIANTS)
    for name, block in blocks.items():
        assert isinstance(
            parse(variant(name).parameters, block, f"training.{name}"),
            variant(name).parameters,
        )


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_fit_function_resolves_and_takes_name_options_and_data(name):
    fit = variant(name).fit_function()
    assert list(inspect.signature(fit).parameters) == ["variant", "options", "data"]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_config_of_the_variant_rebuilds_its_model_class(name):
    config = ModelConfig(variant=name, n_users=3, n_movies=4, model_kwargs={})
    model = build_model(config)
    assert isinstance(model, RatingModel)
    assert type(model) is variant(name).model_class


def test_an_unknown_variant_is_one_error_naming_the_known_ones():
    with pytest.raises(
        UnknownVariantError,
        match="Unknown model variant 'svd'; valid variants: inner_sigmoid, biased_mf, bayesian_fm",
    ):
        variant("svd")
    with pytest.raises(ValueError, match="Unknown model variant 'svd'"):
        ModelConfig(variant="svd", n_users=1, n_movies=1, model_kwargs={})


def test_capabilities_select_variants():
    assert variants_that("predicts_ratings") == [
        "inner_sigmoid",
        "biased_mf",
        "bayesian_fm",
    ]
    assert variants_that("ranks") == list(VARIANTS)
    assert variants_that("folds_in") == [
        "biased_mf",
        "bayesian_fm",
        "ease",
        "als",
        "bpr",
    ]


@pytest.mark.parametrize("ranker", ["ease", "als", "bpr"])
def test_rankers_rank_only(ranker):
    entry = variant(ranker)
    assert (entry.predicts_ratings, entry.ranks, entry.folds_in) == (
        False,
        True,
        True,
    )
    assert ranker not in variants_that("predicts_ratings")
    assert ranker in variants_that("ranks")
