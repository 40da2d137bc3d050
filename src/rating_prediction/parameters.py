"""Typed parameters: one pydantic model per pipeline's block of ``conf/*/parameters_*.yml``.

Every model rejects unknown keys and degenerate values, so a misspelt key such as
``processing.top_n_movie`` or ``training.biased_mf.max_epoch`` is an error instead of a
silently ignored setting. ``ProjectParameters`` checks the whole tree when the Kedro
context is created (see :mod:`rating_prediction.hooks`), before any node runs; each node
parses its own block again with :func:`parse` and then works with typed attributes.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rating_prediction.schema import RATING_MAX, RATING_MIN, SPLITS

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
# Ids travel as Int64 at most; a larger integer cannot name any user or movie.
Id = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
FRACTIONS_TOLERANCE = 1e-6


class ParameterError(ValueError):
    """A parameter is unknown, missing or holds a value the project cannot use."""


class Parameters(BaseModel):
    """Base of every parameter model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ModelParametersT = TypeVar("ModelParametersT", bound=Parameters)
ParametersT = TypeVar("ParametersT", bound=Parameters)


# --- data_ingestion ---------------------------------------------------------------


class SyntheticSettings(Parameters):
    """``ingestion.synthetic``: the generator of the offline sample (see its YAML)."""

    seed: NonNegativeInt = 42
    n_users: PositiveInt = 3_000
    n_movies: PositiveInt = 1_000
    n_ratings: PositiveInt = 200_000
    rank: PositiveInt = 5
    global_mean: float = 3.65
    user_bias_std: NonNegativeFloat = 0.4
    movie_bias_std: NonNegativeFloat = 0.45
    interaction_std: NonNegativeFloat = 0.5
    noise_std: NonNegativeFloat = 0.5
    user_activity_exponent: NonNegativeFloat = 0.7
    user_activity_offset: PositiveFloat = 20.0
    movie_popularity_exponent: NonNegativeFloat = 1.0
    movie_popularity_offset: PositiveFloat = 10.0
    first_timestamp: NonNegativeInt = 946_684_800  # 2000-01-01
    last_timestamp: NonNegativeInt = 1_537_747_200  # 2018-09-24

    @model_validator(mode="after")
    def _feasible(self) -> SyntheticSettings:
        if self.n_ratings > self.n_users * self.n_movies // 2:
            raise ValueError(
                f"n_ratings={self.n_ratings} needs to be at most half of "
                f"n_users * n_movies = {self.n_users * self.n_movies}"
            )
        if self.first_timestamp > self.last_timestamp:
            raise ValueError("first_timestamp must not be after last_timestamp")
        return self


class IngestionParameters(Parameters):
    """``ingestion``: which release to read, where, and how to fetch it."""

    dataset: str
    raw_dir: str
    base_url: str
    download_timeout_s: PositiveFloat
    synthetic: SyntheticSettings = SyntheticSettings()


# --- data_processing ---------------------------------------------------------------


class SplitParameters(Parameters):
    """``processing.split``: how the mapped ratings become train, val and test."""

    strategy: Literal["random", "temporal"]
    fractions: list[Annotated[float, Field(gt=0)]]
    seed: NonNegativeInt

    @field_validator("fractions")
    @classmethod
    def _three_summing_to_one(cls, fractions: list[float]) -> list[float]:
        if len(fractions) != len(SPLITS) or (
            abs(sum(fractions) - 1) > FRACTIONS_TOLERANCE
        ):
            raise ValueError(
                f"must be {len(SPLITS)} positive numbers ({', '.join(SPLITS)}) "
                f"summing to 1, got {fractions}"
            )
        return fractions


class ProcessingParameters(Parameters):
    """``processing``: the top-N movie filter and the split."""

    top_n_movies: PositiveInt | None
    split: SplitParameters


# --- training ----------------------------------------------------------------------


class RatingScale(Parameters):
    """The range every model clips or squashes its predictions to."""

    rating_min: float = RATING_MIN
    rating_max: float = RATING_MAX

    @field_validator("rating_max")
    @classmethod
    def _above_rating_min(cls, rating_max: float, info: ValidationInfo) -> float:
        rating_min = info.data.get("rating_min")
        if rating_min is not None and rating_max <= rating_min:
            raise ValueError(
                f"rating_max ({rating_max}) must be above rating_min ({rating_min})"
            )
        return rating_max


class InnerSigmoidArguments(RatingScale):
    """``training.inner_sigmoid.model``: the notebook model's constructor arguments."""

    embedding_dim: PositiveInt = 5
    init_std: NonNegativeFloat = 0.1
    sparse: StrictBool = False


class BiasedMFArguments(RatingScale):
    """``training.biased_mf.model``: the biased matrix factorisation's arguments."""

    embedding_dim: PositiveInt = 32
    init_std: NonNegativeFloat = 0.01
    factor_reg: NonNegativeFloat = 0.0
    bias_reg: NonNegativeFloat = 0.0
    sparse: StrictBool = False


class OptimizerParameters(Parameters):
    learning_rate: PositiveFloat
    weight_decay: NonNegativeFloat = 0.0


class TrainerParameters(Parameters):
    """Passed to ``pytorch_lightning.Trainer`` as they are."""

    accelerator: str = "auto"
    devices: PositiveInt | list[NonNegativeInt] | str = "auto"
    strategy: str = "auto"
    precision: str | StrictInt = "32-true"
    num_nodes: PositiveInt = 1


class VariantParameters(Parameters, Generic[ModelParametersT]):
    """``training.<variant>``: one model variant's training settings."""

    seed: NonNegativeInt
    model: ModelParametersT
    optimizer: OptimizerParameters
    batch_size: PositiveInt
    eval_batch_size: PositiveInt
    max_epochs: PositiveInt
    min_epochs: NonNegativeInt
    patience: PositiveInt
    data_on_device: StrictBool = True
    progress_bar_refresh_rate: NonNegativeInt = 50
    refit_on_train_val: StrictBool = False
    trainer: TrainerParameters = TrainerParameters()

    @field_validator("min_epochs")
    @classmethod
    def _at_most_max_epochs(cls, min_epochs: int, info: ValidationInfo) -> int:
        max_epochs = info.data.get("max_epochs")
        if max_epochs is not None and min_epochs > max_epochs:
            raise ValueError(
                f"min_epochs ({min_epochs}) must not exceed max_epochs ({max_epochs})"
            )
        return min_epochs


class TrainingParameters(Parameters):
    """``training``: one block per model variant; the key names the variant."""

    inner_sigmoid: VariantParameters[InnerSigmoidArguments]
    biased_mf: VariantParameters[BiasedMFArguments]


def variant_parameters_model(variant: str) -> type[VariantParameters[Any]]:
    """The parameter model of ``training.<variant>``."""
    if variant not in TrainingParameters.model_fields:
        raise ParameterError(
            f"Unknown model variant {variant!r}; valid variants: "
            f"{', '.join(TrainingParameters.model_fields)}."
        )
    return TrainingParameters.model_fields[variant].annotation


# --- evaluation, reporting, inference ----------------------------------------------


class BiasBaselineParameters(Parameters):
    reg_user: NonNegativeFloat
    reg_movie: NonNegativeFloat
    n_epochs: PositiveInt


class EvaluationParameters(Parameters):
    """``evaluation``: batched prediction and the bias baseline's settings."""

    prediction_batch_size: PositiveInt
    bias_baseline: BiasBaselineParameters


class ReportingParameters(Parameters):
    """``reporting``: the popularity figure's buckets and the summary's figure links."""

    popularity_buckets: PositiveInt
    summary_figures: dict[str, str]


class RecommendParameters(Parameters):
    user_ids: list[Id]
    top_k: PositiveInt


class InferenceParameters(Parameters):
    """``inference``: which variant is served, example pairs and recommendations."""

    served_variant: str
    pairs: list[tuple[Id, Id]]
    recommend: RecommendParameters

    @field_validator("served_variant")
    @classmethod
    def _known_variant(cls, served_variant: str) -> str:
        valid = ["best", *TrainingParameters.model_fields]
        if served_variant not in valid:
            raise ValueError(f"must be one of {valid}, got {served_variant!r}")
        return served_variant


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

    @model_validator(mode="before")
    @classmethod
    def _without_anchors(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        return {key: value for key, value in values.items() if not key.startswith("_")}


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
        valid = _valid_keys(model, location[:-1])
        return f"unknown key '{full_key}'; valid keys here: {', '.join(valid)}"
    if detail["type"] == "missing":
        return f"missing key '{full_key}'"
    if detail["type"] == "value_error":  # the project's own checks quote the value
        return f"'{full_key}': {detail['msg'].removeprefix('Value error, ')}"
    return f"'{full_key}': {detail['msg']} (got {detail.get('input')!r})"


def _valid_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the (nested) model at ``path`` inside ``model``."""
    for part in path:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
