"""``tuning``: an Optuna search of one variant's ``training`` block on val."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    PositiveFloat,
    StrictBool,
    StrictInt,
    model_validator,
)

from rating_prediction.parameters.base import (
    Parameters,
    valid_keys,
)
from rating_prediction.parameters.bounds import Seed, Trials
from rating_prediction.parameters.training import TrainingParameters, VariantName


class SearchDimension(Parameters):
    """One tuned key: ``int`` or ``float`` between ``low`` and ``high`` (``log``:
    log-uniform; ``step``: a grid), or one of ``choices`` (``categorical``; ``None``
    among them switches off a key that may be null, e.g. bayesian_fm's
    ``features.time_bucket_days``)."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: StrictBool = False
    step: PositiveFloat | None = None
    choices: list[StrictBool | StrictInt | float | str | None] | None = None

    @model_validator(mode="after")
    def _bounded_or_listed(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs non-empty choices")
            return self
        if self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"needs low <= high, got low={self.low}, high={self.high}")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("log needs low > 0 and no step")
        return self


class TuningParameters(Parameters):
    """``tuning``: an Optuna search of ``training.<variant>`` on the val split.

    ``search_spaces`` holds one search space per variant, and ``variant``'s is searched
    (:attr:`search_space`): its keys are dotted paths inside ``training.<variant>``
    (``rank``, ``features.genres``). The study lives in ``storage`` (an Optuna RDB
    URL) under ``study_name`` and a second run resumes it.
    """

    variant: VariantName
    n_trials: Trials
    study_name: Annotated[str, Field(min_length=1)]
    storage: Annotated[str, Field(min_length=1)]
    seed: Seed = 42
    search_spaces: dict[VariantName, dict[str, SearchDimension]]

    @property
    def search_space(self) -> dict[str, SearchDimension]:
        """The searched variant's space."""
        return self.search_spaces[self.variant]

    @model_validator(mode="after")
    def _keys_of_each_variant(self) -> TuningParameters:
        if self.variant not in self.search_spaces:
            raise ValueError(
                f"search_spaces has no space for variant {self.variant!r}: add "
                f"tuning.search_spaces.{self.variant} (spaces for: "
                f"{', '.join(self.search_spaces) or 'none'})"
            )
        for variant, space in self.search_spaces.items():
            variant_model = TrainingParameters.model_fields[variant].annotation
            for path in space:
                *parents, name = path.split(".")
                if name not in valid_keys(variant_model, parents):
                    raise ValueError(
                        f"search_spaces.{variant} key {path!r} is not a key of "
                        f"training.{variant}"
                    )
        return self
