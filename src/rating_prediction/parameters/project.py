"""Every block of the project's parameters at once, checked when the Kedro context is
created."""

from __future__ import annotations

from typing import Any

from pydantic import (
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rating_prediction.parameters.base import (
    Parameters,
    _describe,
)
from rating_prediction.parameters.cross_validation import CrossValidationParameters
from rating_prediction.parameters.evaluation import EvaluationParameters
from rating_prediction.parameters.inference import InferenceParameters
from rating_prediction.parameters.ingestion import IngestionParameters
from rating_prediction.parameters.processing import ProcessingParameters
from rating_prediction.parameters.reporting import ReportingParameters
from rating_prediction.parameters.training import TrainingParameters
from rating_prediction.parameters.tuning import TuningParameters

# Where a fold's training overrides sit, in messages.
OVERRIDES_KEY = "cross_validation.training_overrides"


class ProjectParameters(Parameters):
    """Every block of the project's parameters.

    Top-level keys starting with ``_`` hold YAML anchors (shared defaults, such as
    ``_training_defaults``) and are not parameters of any pipeline.
    """

    ingestion: IngestionParameters
    processing: ProcessingParameters
    training: TrainingParameters
    evaluation: EvaluationParameters
    reporting: ReportingParameters
    inference: InferenceParameters
    cross_validation: CrossValidationParameters = CrossValidationParameters()
    tuning: TuningParameters | None = None

    @model_validator(mode="before")
    @classmethod
    def _without_anchors(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        return {key: value for key, value in values.items() if not key.startswith("_")}

    @field_validator("cross_validation")
    @classmethod
    def _overrides_checked_as_training(
        cls, options: CrossValidationParameters, info: ValidationInfo
    ) -> CrossValidationParameters:
        """The folds train with ``training_overrides`` merged into ``training``: checked
        here as ``training`` is, so a bad override stops the run before any node, not
        when the cross-validation node reaches it."""
        training = info.data.get("training")
        if training is None or not options.training_overrides:
            return options
        merged = training.model_dump()
        for variant, overrides in options.training_overrides.items():
            merged[variant] = _merged(merged[variant], overrides)
        try:
            TrainingParameters.model_validate(merged)
        except ValidationError as error:
            problems = "; ".join(
                _describe(TrainingParameters, OVERRIDES_KEY, detail)
                for detail in error.errors()
            )
            raise ValueError(
                f"the folds' training would be invalid: {problems}"
            ) from None
        return options


def _merged(block: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``block`` with ``overrides`` merged in, key by key (as the folds merge them)."""
    merged = dict(block)
    for key, value in overrides.items():
        nested = isinstance(value, dict) and isinstance(block.get(key), dict)
        merged[key] = _merged(block[key], value) if nested else value
    return merged
