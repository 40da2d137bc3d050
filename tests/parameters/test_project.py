"""Typed parameters: the project's own configuration parses, and a misspelt key or a
degenerate value stops ``kedro run`` before any node writes, naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from kedro.config import OmegaConfigLoader

from rating_prediction.models.variants import ALL_VARIANTS, UnknownVariantError, variant
from rating_prediction.parameters import (
    ParameterError,
    ProjectParameters,
    parse,
)
from tests.project import PROJECT_ROOT, run_project


def project_parameters(env: str = "local") -> dict[str, Any]:
    """The parameters Kedro gives the nodes in ``env`` (anchors dropped, soft merge)."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env=env,
        merge_strategy={"parameters": "soft"},
    )
    return loader["parameters"]


@pytest.mark.parametrize("env", ["local", "scale", "netflix-size"])
def test_every_environment_parses(env):
    parameters = parse(ProjectParameters, project_parameters(env), "")
    assert set(parameters.training.model_fields) == set(ALL_VARIANTS)


def test_the_netflix_size_environment_has_the_prizes_shape():
    parameters = parse(ProjectParameters, project_parameters("netflix-size"), "")
    synthetic = parameters.ingestion.synthetic
    assert (synthetic.n_ratings, synthetic.n_users, synthetic.n_movies) == (
        100_480_507,
        480_189,
        17_770,
    )
    assert synthetic.rating_step == 1.0
    assert parameters.processing.top_n_movies is None
    # The soft merge keeps conf/base's other keys of every block it overrides.
    assert parameters.training.biased_mf.model.factor_reg == 0.1
    assert parameters.training.bayesian_fm.features.genres


def test_shared_training_defaults_reach_both_variants():
    training = parse(ProjectParameters, project_parameters(), "").training
    assert training.inner_sigmoid.patience == training.biased_mf.patience == 2
    assert training.inner_sigmoid.max_epochs == training.biased_mf.max_epochs == 40
    assert training.inner_sigmoid.optimizer == training.biased_mf.optimizer
    assert training.biased_mf.model.factor_reg == 0.1


def test_the_variant_is_named_by_its_key_only():
    block = project_parameters()["training"]["inner_sigmoid"]
    with pytest.raises(
        ParameterError, match=r"unknown key 'training\.inner_sigmoid\.variant'"
    ):
        parse(
            variant("inner_sigmoid").parameters,
            {**block, "variant": "biased_mf"},
            "training.inner_sigmoid",
        )


def test_unknown_variant_lists_the_valid_ones():
    with pytest.raises(
        UnknownVariantError, match="valid variants: inner_sigmoid, biased_mf"
    ):
        variant("svd")


def test_one_error_lists_every_problem():
    parameters = project_parameters()
    parameters["processing"]["top_n_movie"] = 10
    parameters["inference"]["recommend"]["top_k"] = 0
    with pytest.raises(ParameterError) as error:
        parse(ProjectParameters, parameters, "")
    assert "unknown key 'processing.top_n_movie'" in str(error.value)
    assert "'inference.recommend.top_k'" in str(error.value)


# Each override is merged into the parameters as `kedro run --params` would.
INVALID_RUNTIME_PARAMETERS = {
    "misspelt key": (
        {"processing": {"top_n_movie": 10}},
        r"unknown key 'processing\.top_n_movie'; valid keys here: top_n_movies, split",
    ),
    "misspelt training key": (
        {"training": {"inner_sigmoid": {"max_epoch": 3}}},
        r"unknown key 'training\.inner_sigmoid\.max_epoch'; valid keys here: seed,",
    ),
    "misspelt block": (
        {"procesing": {"top_n_movies": 10}},
        r"unknown key 'procesing'; valid keys here: ingestion, processing,",
    ),
    "embedding_dim 0": (
        {"training": {"biased_mf": {"model": {"embedding_dim": 0}}}},
        r"'training\.biased_mf\.model\.embedding_dim': .*greater than or equal to 1",
    ),
    "learning_rate 0": (
        {"training": {"inner_sigmoid": {"optimizer": {"learning_rate": 0.0}}}},
        r"'training\.inner_sigmoid\.optimizer\.learning_rate': .*greater than 0",
    ),
    "batch_size 0": (
        {"training": {"biased_mf": {"batch_size": 0}}},
        r"'training\.biased_mf\.batch_size': .*greater than or equal to 1",
    ),
    "eval_batch_size 0": (
        {"training": {"biased_mf": {"eval_batch_size": 0}}},
        r"'training\.biased_mf\.eval_batch_size': .*greater than or equal to 1",
    ),
    "optimizer_steps_per_training_step 0": (
        {"training": {"biased_mf": {"optimizer_steps_per_training_step": 0}}},
        r"'training\.biased_mf\.optimizer_steps_per_training_step': .*greater than or "
        r"equal to 1",
    ),
    "max_epochs 0": (
        {"training": {"inner_sigmoid": {"max_epochs": 0, "min_epochs": 0}}},
        r"'training\.inner_sigmoid\.max_epochs': .*greater than or equal to 1",
    ),
    "min_epochs above max_epochs": (
        {"training": {"inner_sigmoid": {"max_epochs": 3}}},
        r"'training\.inner_sigmoid\.min_epochs': min_epochs \(6\) must not exceed "
        r"max_epochs \(3\)",
    ),
    # The rating scale is the data's (rating_scale), no longer a training parameter.
    "a rating_min of the former layout": (
        {"training": {"biased_mf": {"model": {"rating_min": 1.0}}}},
        r"'training\.biased_mf\.model': rating_min is no longer a parameter: the "
        r"rating scale now comes from the data.*ingestion\.file\.rating_scale",
    ),
    "a rating_max of the former layout in bayesian_fm": (
        {"training": {"bayesian_fm": {"rating_max": 10.0}}},
        r"'training\.bayesian_fm': rating_max is no longer a parameter",
    ),
    "fractions not summing to 1": (
        {"processing": {"split": {"fractions": [0.7, 0.2, 0.2]}}},
        r"'processing\.split\.fractions': must be 3 positive numbers",
    ),
    "a zero fraction": (
        {"processing": {"split": {"fractions": [1.0, 0.0, 0.0]}}},
        r"'processing\.split\.fractions\.1': .*greater than 0",
    ),
    "popularity_buckets 0": (
        {"reporting": {"popularity_buckets": 0}},
        r"'reporting\.popularity_buckets': .*greater than or equal to 1",
    ),
    "top_k 0": (
        {"inference": {"recommend": {"top_k": 0}}},
        r"'inference\.recommend\.top_k': .*greater than or equal to 1",
    ),
    "a rating model as served_ranker": (
        {"inference": {"served_ranker": "biased_mf"}},
        r"'inference\.served_ranker': inference\.served_ranker 'biased_mf' is not a "
        r"ranker .*choose one of best, none, ease",
    ),
    "an unknown served_ranker": (
        {"inference": {"served_ranker": "eas"}},
        r"'inference\.served_ranker': must be 'best', 'none' or the name of a ranker "
        r"\(a variant that ranks movies and predicts no ratings\), got 'eas'",
    ),
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    list(INVALID_RUNTIME_PARAMETERS.values()),
    ids=list(INVALID_RUNTIME_PARAMETERS),
)
def test_invalid_runtime_parameters_stop_the_run_before_any_node_writes(
    project_copy, overrides, message
):
    with pytest.raises(ParameterError, match=message):
        run_project(project_copy, overrides)
    assert _written_files(project_copy) == []
    # Refused before kedro-mlflow opened a run, so the store holds no run either.
    assert mlflow.active_run() is None


def test_a_misspelt_key_in_yaml_stops_the_run_before_any_node_writes(project_copy):
    local = project_copy / "conf" / "local"
    local.mkdir(parents=True, exist_ok=True)
    (local / "parameters.yml").write_text(
        yaml.safe_dump({"training": {"biased_mf": {"max_epoch": 3}}})
    )
    with pytest.raises(
        ParameterError, match=r"unknown key 'training\.biased_mf\.max_epoch'"
    ):
        run_project(project_copy, {})
    assert _written_files(project_copy) == []


def _written_files(project_path: Path) -> list[Path]:
    data = project_path / "data"
    return (
        sorted(path for path in data.rglob("*") if path.is_file())
        if data.exists()
        else []
    )
