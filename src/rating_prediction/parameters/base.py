"""What every parameter model shares: the base class, the common value types, and
:func:`parse`, which turns a block of parameters into its model or a
:class:`ParameterError` naming every offending key."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from rating_prediction.data.schema import MAX_ID

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
# Ids are held as Int32 from ingestion on: no user or movie has one outside 0..MAX_ID.
Id = Annotated[StrictInt, Field(ge=0, le=MAX_ID)]
FRACTIONS_TOLERANCE = 1e-6
# A blend's weight in [0, 1]: integers 0 and 1 accepted, booleans and strings refused.
Weight = Annotated[StrictFloat, Field(ge=0, le=1)]


class ParameterError(ValueError):
    """A parameter is unknown, missing or holds a value the project cannot use."""


class Parameters(BaseModel):
    """Base of every parameter model: unknown keys are errors, values are immutable,
    and no number is NaN or infinite (``.inf`` in YAML or ``inf`` on the command line
    would pass every lower bound and reach the code as a size or a rate)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


ModelParametersT = TypeVar("ModelParametersT", bound=Parameters)
ParametersT = TypeVar("ParametersT", bound=Parameters)


def parse(model: type[ParametersT], values: Any, key: str) -> ParametersT:
    """``values`` (the parameters at ``key``, e.g. ``processing.split``) as ``model``.

    Raises:
        ParameterError: Naming every offending key in full, what is wrong with it and,
            for an unknown key, the valid keys at that level.
    """
    if isinstance(values, model):
        return values
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = [_describe(model, key, detail) for detail in error.errors()]
        raise ParameterError(
            "Invalid parameters (conf/base/parameters_*.yml, conf/<env>/ or --params):\n"
            + "\n".join(f"- {problem}" for problem in problems)
        ) from None


def _describe(model: type[Parameters], key: str, detail: Any) -> str:
    location = [str(part) for part in detail["loc"]]
    full_key = ".".join([key, *location]) if key else ".".join(location)
    if detail["type"] == "extra_forbidden":
        valid = valid_keys(model, location[:-1])
        return f"unknown key '{full_key}'; valid keys here: {', '.join(valid)}"
    if detail["type"] == "missing":
        return f"missing key '{full_key}'"
    if detail["type"] == "value_error":  # the project's own checks quote the value
        return f"'{full_key}': {detail['msg'].removeprefix('Value error, ')}"
    return f"'{full_key}': {detail['msg']} (got {detail.get('input')!r})"


def valid_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the (nested) model at ``path`` inside ``model``."""
    for part in path:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
