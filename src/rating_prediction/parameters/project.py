"""Every block of the project's parameters at once, checked when the Kedro context is
created."""

from __future__ import annotations

from typing import Any

from pydantic import (
    model_validator,
)

from rating_prediction.parameters.base import (
    Parameters,
)
from rating_prediction.parameters.cross_validation import CrossValidationParameters
from rating_prediction.parameters.evaluation import EvaluationParameters
from rating_prediction.parameters.inference import InferenceParameters
from rating_prediction.parameters.ingestion import IngestionParameters
from rating_prediction.parameters.processing import ProcessingParameters
from rating_prediction.parameters.reporting import ReportingParameters
from rating_prediction.parameters.training import TrainingParameters
from rating_prediction.parameters.tuning import TuningParameters


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
