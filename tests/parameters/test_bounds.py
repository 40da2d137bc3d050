"""Every size has a ceiling: a value past it (``max_epochs=1e12``) is refused naming its
key, before any node runs, whatever ``--pipelines`` says; no number is NaN or infinite."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin

import pytest
from annotated_types import Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rating_prediction.parameters import ParameterError, ProjectParameters, parse
from tests.parameters.test_project import project_parameters
from tests.project import refused_kedro_run

# Integer fields whose own validator bounds them, with a message of its own.
BOUNDED_BY_THEIR_VALIDATOR = {
    "EaseParameters.max_items",  # at most EASE_MAX_ITEMS_CEILING, saying why
    "SearchDimension.choices",  # each choice is checked as its key, in its trial
}


def _models(model: type[BaseModel], seen: set[type]) -> Iterator[type[BaseModel]]:
    """``model`` and every parameter model reachable from its fields."""
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        for part in _parts(field.annotation):
            if isinstance(part, type) and issubclass(part, BaseModel):
                yield from _models(part, seen)


def _parts(annotation: Any) -> Iterator[Any]:
    yield annotation
    for argument in get_args(annotation):
        yield from _parts(argument)


def _is_ceiling(constraint: Any) -> bool:
    if isinstance(constraint, FieldInfo):
        return any(_is_ceiling(inner) for inner in constraint.metadata)
    return isinstance(constraint, Le | Lt)


def _has_unbounded_int(annotation: Any, metadata: list[Any]) -> bool:
    """Whether ``annotation`` (with the constraints ``metadata``) holds an integer
    without an upper bound, anywhere inside it (a union, a list, a tuple)."""
    if get_origin(annotation) is Annotated:
        base, *inner = get_args(annotation)
        return _has_unbounded_int(base, [*metadata, *inner])
    if annotation is int:
        return not any(_is_ceiling(constraint) for constraint in metadata)
    if any(type(constraint).__name__ == "PlainValidator" for constraint in metadata):
        return False  # the validator owns the whole value (request ids: 0..MAX_ID)
    return any(_has_unbounded_int(argument, []) for argument in get_args(annotation))


def _plain_validated(model: type[BaseModel]) -> set[str]:
    """The fields a plain validator owns (``trainer.devices``, ``precision``): it
    checks the whole value itself, bounds included."""
    validators = model.__pydantic_decorators__.field_validators.values()
    return {
        name
        for validator in validators
        if validator.info.mode == "plain"
        for name in validator.info.fields
    }


def test_every_integer_parameter_has_a_ceiling():
    unbounded = [
        f"{model.__name__}.{name}"
        for model in _models(ProjectParameters, set())
        for name, field in model.model_fields.items()
        if name not in _plain_validated(model)
        and _has_unbounded_int(field.annotation, list(field.metadata))
    ]
    assert sorted(set(unbounded) - BOUNDED_BY_THEIR_VALIDATOR) == []


def _with(key: str, value: Any) -> dict[str, Any]:
    """The project's parameters (conf/base) with ``key`` (dotted) set to ``value``, as
    ``--params key=value`` would."""
    parameters = copy.deepcopy(project_parameters())
    *parents, name = key.split(".")
    block = parameters
    for parent in parents:
        block = block.setdefault(parent, {})
    block[name] = value
    return parameters


# One key for every size of every block, each set past its ceiling.
PAST_THE_CEILING = {
    "training.biased_mf.max_epochs": 10**12,
    "training.inner_sigmoid.patience": 10**12,
    "training.biased_mf.batch_size": 2**40,
    "training.biased_mf.eval_batch_size": 2**40,
    "training.biased_mf.optimizer_steps_per_training_step": 2**40,
    "training.biased_mf.progress_bar_refresh_rate": 2**40,
    "training.biased_mf.seed": 2**32,
    "training.biased_mf.model.embedding_dim": 10**6,
    "training.inner_sigmoid.model.embedding_dim": 10**6,
    "training.biased_mf.trainer.num_nodes": 10**6,
    "training.bayesian_fm.rank": 10**6,
    "training.bayesian_fm.n_iter": 10**9,
    "training.bayesian_fm.n_kept_samples": 10**9,
    "training.bayesian_fm.history_rows": 2**40,
    "training.bayesian_fm.max_fit_ratings": 2**40,
    "training.bayesian_fm.seed": 2**32,
    "training.als.factors": 10**6,
    "training.als.iterations": 10**9,
    "training.als.num_threads": 10**6,
    "training.bpr.factors": 10**6,
    "training.bpr.iterations": 10**9,
    "training.bpr.seed": 2**32,
    "ingestion.synthetic.n_users": 10**9,
    "ingestion.synthetic.n_movies": 10**9,
    "ingestion.synthetic.n_ratings": 10**12,
    "ingestion.synthetic.rank": 10**6,
    "ingestion.synthetic.seed": 2**32,
    "ingestion.synthetic.last_timestamp": 10**12,
    "processing.top_n_movies": 2**40,
    "processing.split.seed": 2**32,
    "evaluation.prediction_batch_size": 2**40,
    "evaluation.bias_baseline.n_epochs": 10**12,
    "evaluation.ranking.k": 10**6,
    "evaluation.ranking.max_users": 2**40,
    "evaluation.ranking.random_seed": 2**32,
    "reporting.popularity_buckets": 10**6,
    "inference.recommend.top_k": 10**6,
    "inference.fold_in.top_k": 10**6,
    "inference.similar.top_k": 10**6,
    "inference.batch_recommend.top_k": 10**6,
    "inference.batch_recommend.block_size": 10**6,
    "inference.request_files.batch_size": 2**40,
    "cross_validation.k": 10**6,
    "cross_validation.max_epochs": 10**12,
    "cross_validation.seed": 2**32,
    "tuning.n_trials": 10**6,
    "tuning.seed": 2**32,
}


@pytest.mark.parametrize(("key", "value"), PAST_THE_CEILING.items())
def test_a_size_past_its_ceiling_is_refused_naming_the_key(key, value):
    with pytest.raises(
        ParameterError,
        match=rf"'{re.escape(key)}': Input should be less than or equal to \d+ "
        rf"\(got {value}\)",
    ):
        parse(ProjectParameters, _with(key, value), "")


def test_ease_items_past_the_ceiling_say_what_the_matrix_would_take():
    with pytest.raises(
        ParameterError,
        match=r"'training\.ease\.max_items': max_items 100,000 would hold a 100,000 x "
        r"100,000 matrix about three times .*at most 30,000",
    ):
        parse(ProjectParameters, _with("training.ease.max_items", 100_000), "")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # `--params training.biased_mf.max_epochs=1e12` arrives as a float.
        (1e12, r"Input should be a valid integer \(got 1000000000000\.0\)"),
        (1.5, r"Input should be a valid integer \(got 1\.5\)"),
        ("1e12", r"Input should be a valid integer \(got '1e12'\)"),
        (100_001, r"Input should be less than or equal to 100000 \(got 100001\)"),
    ],
)
def test_max_epochs_is_a_whole_number_of_at_most_100_000(value, message):
    with pytest.raises(
        ParameterError, match=rf"'training\.biased_mf\.max_epochs': {message}"
    ):
        parse(ProjectParameters, _with("training.biased_mf.max_epochs", value), "")
    parameters = parse(
        ProjectParameters, _with("training.biased_mf.max_epochs", 100_000), ""
    )
    assert parameters.training.biased_mf.max_epochs == 100_000


@pytest.mark.parametrize(
    "key",
    [
        "ingestion.download_timeout_s",
        "training.biased_mf.optimizer.learning_rate",
        "training.bayesian_fm.init_stdev",
        "evaluation.bias_baseline.reg_user",
    ],
)
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_no_number_is_infinite_or_nan(key, value):
    with pytest.raises(ParameterError, match=rf"'{re.escape(key)}': .*finite number"):
        parse(ProjectParameters, _with(key, value), "")


def test_a_bad_cross_validation_override_is_refused_before_the_folds():
    overrides = {"biased_mf": {"max_epochs": 10**12, "trainer": {"devices": "abc"}}}
    with pytest.raises(ParameterError) as error:
        parse(
            ProjectParameters,
            _with("cross_validation.training_overrides", overrides),
            "",
        )
    assert (
        "'cross_validation.training_overrides.biased_mf.max_epochs': Input should "
        "be less than or equal to 100000" in str(error.value)
    )
    assert "'cross_validation.training_overrides.biased_mf.trainer.devices': must" in (
        str(error.value)
    )
    fine = {"biased_mf": {"max_epochs": 3, "min_epochs": 1}}
    parsed = parse(
        ProjectParameters, _with("cross_validation.training_overrides", fine), ""
    )
    assert parsed.cross_validation.training_overrides == fine


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "key"),
    [
        ("training.biased_mf.max_epochs=1e12", "training.biased_mf.max_epochs"),
        (
            "training.biased_mf.trainer.devices=abc",
            "training.biased_mf.trainer.devices",
        ),
        (
            "training.inner_sigmoid.trainer.accelerator=tpu",
            "training.inner_sigmoid.trainer.accelerator",
        ),
    ],
)
def test_kedro_run_of_ingestion_alone_refuses_a_bad_training_parameter(
    project_copy, params, key
):
    """The acceptance line of the hostile-input report: `--pipelines data_ingestion`
    runs no training node, and is refused all the same, before any node runs."""
    printed = refused_kedro_run(
        project_copy, "--pipelines", "data_ingestion", "--params", params
    )
    # Click's one error, not a traceback: the header, then one line naming the key.
    assert printed.startswith("Error: Invalid parameters"), printed
    assert f"\n- '{key}': " in printed
    data = project_copy / "data"
    assert not data.exists() or not [p for p in data.rglob("*") if p.is_file()]
