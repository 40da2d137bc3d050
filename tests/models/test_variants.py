"""The variant registry against the parameter models and the conf files: a variant is
one entry, and nothing else may know of one the registry does not."""

import inspect

import pytest

from rating_prediction.models.config import ModelConfig, build_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.variants import (
    ALL_VARIANTS,
    LOCAL,
    SPARK,
    VARIANTS,
    UnknownVariantError,
    variant,
    variants_that,
)
from rating_prediction.parameters import TrainingParameters, parse
from tests.training.fixtures import project_training_parameters


def test_every_variant_has_a_training_block_with_its_parameter_model():
    fields = TrainingParameters.model_fields
    assert list(fields) == list(ALL_VARIANTS)
    for name, entry in ALL_VARIANTS.items():
        assert entry.name == name
        assert fields[name].annotation is entry.parameters


def test_the_conf_files_hold_one_valid_block_per_variant():
    blocks = {
        name: block
        for name, block in project_training_parameters().items()
        if not name.startswith("_")
    }
    assert set(blocks) == set(ALL_VARIANTS)
    for name, block in blocks.items():
        assert isinstance(
            parse(variant(name).parameters, block, f"training.{name}"),
            variant(name).parameters,
        )


@pytest.mark.parametrize("name", list(ALL_VARIANTS))
def test_every_fit_function_resolves_and_takes_name_options_and_data(name):
    if variant(name).engine == SPARK:
        pytest.importorskip("pyspark")
    fit = variant(name).fit_function()
    assert list(inspect.signature(fit).parameters) == ["variant", "options", "data"]


@pytest.mark.parametrize("name", list(ALL_VARIANTS))
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


def test_the_spark_variants_are_chosen_by_engine():
    assert variants_that("predicts_ratings", SPARK) == ["spark_als"]
    assert variants_that("ranks", SPARK) == ["spark_als_implicit"]
    assert variants_that("folds_in", SPARK) == ["spark_als", "spark_als_implicit"]
    # The one-machine table holds every variant but the Spark ones, in order.
    assert list(VARIANTS) == [
        name for name, entry in ALL_VARIANTS.items() if entry.engine == LOCAL
    ]
    assert {"spark_als", "spark_als_implicit"}.isdisjoint(VARIANTS)
    # A Spark variant is served by the one-machine model classes.
    assert variant("spark_als").model_class is variant("biased_mf").model_class
    assert variant("spark_als_implicit").model_class is variant("als").model_class


def test_no_default_pipeline_names_a_spark_variant():
    """The one-machine training, evaluation, cross-validation, tuning and inference
    pipelines iterate over the one-machine variants only: nothing of theirs fits,
    reads or scores a Spark variant (which needs --env spark)."""
    from rating_prediction.pipelines import (  # noqa: PLC0415
        cross_validation,
        evaluation,
        inference,
        training,
        tuning,
    )

    for package in (training, evaluation, cross_validation, tuning, inference):
        pipeline = package.create_pipeline()
        names = {node.name for node in pipeline.nodes} | pipeline.all_outputs()
        names |= pipeline.inputs()
        spark_names = {name for name in names if "spark" in name}
        assert not spark_names, (package.__name__, spark_names)
