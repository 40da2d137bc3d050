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
    PlainValidator,
    PositiveFloat,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rating_prediction.data.schema import RATING_MAX, RATING_MIN, SPLITS
from rating_prediction.movielens.releases import MovieLensError, release_layout

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
# Ids are held as Int32 from ingestion on: no user or movie has one outside 0..2**31-1.
Id = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]
FRACTIONS_TOLERANCE = 1e-6
# A blend's weight in [0, 1]: integers 0 and 1 accepted, booleans and strings refused.
Weight = Annotated[StrictFloat, Field(ge=0, le=1)]


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
    # 0.5: half stars from 0.5 (MovieLens); 1.0: whole stars from 1 (Netflix Prize).
    rating_step: Literal[0.5, 1.0] = 0.5
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
    """``processing.split``: how the mapped ratings become train, val and test.

    ``predefined`` reads the release's own split (ml-100k: ``fold`` is one of ``u1`` ...
    ``u5``, ``ua``, ``ub``): test is ``<fold>.test``, and a seeded ``val_fraction`` of
    ``<fold>.base`` becomes val (there is no official validation set); ``fractions``
    are then unused.
    """

    strategy: Literal["random", "temporal", "predefined"]
    fractions: list[Annotated[float, Field(gt=0)]]
    seed: NonNegativeInt
    fold: str = "u1"
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1

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
    optimizer_steps_per_training_step: PositiveInt = 1
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


class BayesianFMFeatures(Parameters):
    """``training.bayesian_fm.features``: which side features the relation blocks hold,
    all built from the fitted ratings (and the movies table) only."""

    implicit: StrictBool = True  # user block: the movies the user rated
    flipped: StrictBool = True  # movie block: the users who rated the movie
    genres: StrictBool = True  # movie block: the movie's genres


class BayesianFMParameters(RatingScale):
    """``training.bayesian_fm``: myFM's Gibbs-sampled Bayesian factorisation machine.

    ``n_iter`` Gibbs samples are drawn; the last ``n_kept_samples`` are averaged (the
    exported model has ``n_kept_samples * rank`` factors, so it bounds memory). The number
    of samples is chosen on val; with ``refit_on_train_val`` the final model is then
    sampled again on train + val. ``history_rows`` measures the per-sample train and
    val MSE on a seeded sample of at most that many rows of each (``None``: all);
    ``max_fit_ratings`` samples on a seeded sample of at most that many of the fitted
    ratings (``None``: all), bounding myFM's memory.
    """

    seed: NonNegativeInt = 42
    rank: PositiveInt = 10
    n_iter: PositiveInt = 100
    n_kept_samples: PositiveInt = 80
    init_stdev: PositiveFloat = 0.1
    features: BayesianFMFeatures = BayesianFMFeatures()
    refit_on_train_val: StrictBool = True
    history_rows: PositiveInt | None = None
    max_fit_ratings: PositiveInt | None = None

    @model_validator(mode="after")
    def _kept_at_most_drawn(self) -> BayesianFMParameters:
        if self.n_kept_samples > self.n_iter:
            raise ValueError(
                f"n_kept_samples ({self.n_kept_samples}) must not exceed n_iter "
                f"({self.n_iter})"
            )
        return self


class TrainingParameters(Parameters):
    """``training``: one block per model variant; the key names the variant."""

    inner_sigmoid: VariantParameters[InnerSigmoidArguments]
    biased_mf: VariantParameters[BiasedMFArguments]
    bayesian_fm: BayesianFMParameters


def variant_parameters_model(variant: str) -> type[VariantParameters[Any]]:
    """The parameter model of ``training.<variant>``."""
    if variant not in TrainingParameters.model_fields:
        raise ParameterError(
            f"Unknown model variant {variant!r}; valid variants: "
            f"{', '.join(TrainingParameters.model_fields)}."
        )
    return TrainingParameters.model_fields[variant].annotation


# --- tuning ------------------------------------------------------------------------


class SearchDimension(Parameters):
    """One tuned key: ``int`` or ``float`` between ``low`` and ``high`` (``log``:
    log-uniform; ``step``: a grid), or one of ``choices`` (``categorical``)."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: StrictBool = False
    step: PositiveFloat | None = None
    choices: list[StrictBool | StrictInt | float | str] | None = None

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

    ``search_space`` keys are dotted paths inside ``training.<variant>`` (``rank``,
    ``features.genres``); the study lives in ``storage`` (an Optuna RDB URL) under
    ``study_name`` and a second run resumes it.
    """

    variant: str
    n_trials: PositiveInt
    study_name: Annotated[str, Field(min_length=1)]
    storage: Annotated[str, Field(min_length=1)]
    seed: NonNegativeInt = 42
    search_space: dict[str, SearchDimension]

    @model_validator(mode="after")
    def _keys_of_the_variant(self) -> TuningParameters:
        variant_model = variant_parameters_model(self.variant)
        for path in self.search_space:
            *parents, name = path.split(".")
            if name not in _valid_keys(variant_model, parents):
                raise ValueError(
                    f"search_space key {path!r} is not a key of training.{self.variant}"
                )
        return self


# --- evaluation, reporting, inference ----------------------------------------------


class BiasBaselineParameters(Parameters):
    reg_user: NonNegativeFloat
    reg_movie: NonNegativeFloat
    n_epochs: PositiveInt


class RankingParameters(Parameters):
    """``evaluation.ranking``: top-K metrics of what a model would recommend.

    Relevant means a test rating of at least ``relevance_threshold``; candidates are the
    movies seen in training that the user has not rated in train. Users are scored in
    blocks of at most ``prediction_batch_size`` (user, movie) pairs. Above 0,
    ``popularity_weight`` also ranks each variant's scores blended with log popularity
    (entry ``<variant>_popularity_blend``). ``max_users`` ranks a seeded sample of at
    most that many of the users (``None``: every user).
    """

    k: PositiveInt = 10
    relevance_threshold: float = Field(default=4.0, gt=RATING_MIN, le=RATING_MAX)
    random_seed: NonNegativeInt = 42
    popularity_weight: Weight = 0.5
    max_users: PositiveInt | None = None


class EvaluationParameters(Parameters):
    """``evaluation``: batched prediction, the bias baseline and the ranking metrics."""

    prediction_batch_size: PositiveInt
    bias_baseline: BiasBaselineParameters
    ranking: RankingParameters = RankingParameters()


class CrossValidationParameters(Parameters):
    """``cross_validation``: repeated evaluation over ``k`` folds, with intervals.

    ``scheme``: ``predefined`` (the release's own folds, ``folds``; ml-100k: u1..u5),
    ``random`` (``k`` random splits with seeds ``seed``, ``seed + 1``, ...,
    cut at ``processing.split.fractions``) or ``kfold`` (``k``-fold cross validation of
    a seeded permutation; val is ``val_fraction`` of each fold's training part).
    ``max_epochs`` (null: as trained) caps the epochs of every epoch-trained variant and
    ``training_overrides`` (``{variant: {key: value}}``) is merged into ``training`` on
    every fold, to keep the run short; every variant in ``MODEL_VARIANTS`` and every
    baseline is evaluated on each fold, each override checked as ``training`` is.
    """

    scheme: Literal["predefined", "random", "kfold"] = "kfold"
    k: Annotated[StrictInt, Field(ge=2)] = 5
    seed: NonNegativeInt = 42
    folds: list[str] | None = Field(default=None, min_length=2)
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    max_epochs: PositiveInt | None = None
    training_overrides: dict[str, dict[str, Any]] = {}
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95

    @field_validator("training_overrides")
    @classmethod
    def _known_variants(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = [
            name for name in overrides if name not in TrainingParameters.model_fields
        ]
        if unknown:
            raise ValueError(
                f"unknown variant(s) {unknown}; valid: "
                f"{', '.join(TrainingParameters.model_fields)}"
            )
        return overrides


class ReportingParameters(Parameters):
    """``reporting``: the popularity figure's buckets and the summary's figure links."""

    popularity_buckets: PositiveInt
    summary_figures: dict[str, str]


# Ids in requests: as `Id`, with a message saying what to do with a bad one.
REQUEST_ID_MAX = 2**31 - 1
# Parameters hold a handful of example requests: MLflow logs the `inference` block as one
# run parameter (at most 6,000 characters). More belong in a request file.
MAX_PARAMETER_REQUESTS = 100


def _request_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"must be an integer id (original MovieLens id), got {value!r}"
        )
    if not 0 <= value <= REQUEST_ID_MAX:
        raise ValueError(
            f"must be an original MovieLens id, an integer in 0..{REQUEST_ID_MAX} "
            f"(ids are Int32 from ingestion on), got {value}: fix or remove it (an id "
            "unseen in training is fine: it gets the model's fallback)"
        )
    return value


RequestId = Annotated[int, PlainValidator(_request_id)]


def _a_few_requests(
    requests: Any, what: str, example: str, many: str, dataset: str
) -> Any:
    """``requests`` unchanged when it is a short list; else what to write instead."""
    if not isinstance(requests, list):
        raise ValueError(
            f"must be a list of {what} (original MovieLens ids), e.g. {example}, or [] "
            f"for none; got {requests!r}"
        )
    if len(requests) > MAX_PARAMETER_REQUESTS:
        raise ValueError(
            f"holds {len(requests)} {many}; parameters hold at most "
            f"{MAX_PARAMETER_REQUESTS} examples (MLflow logs them as a run parameter). "
            f"Put them in a request file instead: the catalog entry {dataset} "
            "(conf/base/catalog_inference.yml)"
        )
    return requests


class RecommendParameters(Parameters):
    """``inference.recommend``: top-K for a few users (and ``popularity_weight`` for
    every recommendation of the served model, ``batch_recommend``'s included).

    Above 0, ``popularity_weight`` ranks by the evaluation's popularity blend
    (``evaluation.ranking.popularity_weight``'s formula) instead of the predicted
    rating; 0 is the model's own ranking.
    """

    user_ids: list[RequestId]
    top_k: PositiveInt
    popularity_weight: Weight = 0.0

    @field_validator("user_ids", mode="before")
    @classmethod
    def _a_few_user_ids(cls, user_ids: Any) -> Any:
        return _a_few_requests(user_ids, "userIds", "[1, 2]", "users", "user_requests")


class FoldInParameters(Parameters):
    """``inference.fold_in``: a new user's own (movieId, rating) pairs, folded in
    without retraining (biased MF variants), and the ridge regularisation."""

    ratings: list[tuple[Id, Annotated[float, Field(ge=RATING_MIN, le=RATING_MAX)]]] = []
    regularization: NonNegativeFloat = 5.0
    top_k: PositiveInt = 10


class SimilarParameters(Parameters):
    """``inference.similar``: movies to find look-alikes of, by their factors."""

    movie_ids: list[Id] = []
    top_k: PositiveInt = 10


class BatchRecommendParameters(Parameters):
    """``inference.batch_recommend``: top-K for every user seen in training, or for the
    users of the ``user_requests`` file, in blocks of users."""

    top_k: PositiveInt = 10
    block_size: PositiveInt = 128

    @model_validator(mode="before")
    @classmethod
    def _users_file_moved(cls, values: Any) -> Any:
        if isinstance(values, dict) and "users_file" in values:
            raise ValueError(
                "'users_file' is no longer a parameter: the users to recommend for "
                "come from the catalog entry user_requests; put them in "
                "data/01_raw/requests/users.parquet (or point that entry at your "
                "file, see conf/base/catalog_inference.yml) and remove users_file"
            )
        return values


class RequestFileParameters(Parameters):
    """``inference.request_files``: how request files (``pair_requests``,
    ``user_requests``) are read, answered and written: ``batch_size`` rows at a time."""

    batch_size: PositiveInt = 100_000


class InferenceParameters(Parameters):
    """``inference``: which variant is served, example pairs and recommendations."""

    served_variant: str
    pairs: list[tuple[RequestId, RequestId]]
    recommend: RecommendParameters
    fold_in: FoldInParameters = FoldInParameters()
    similar: SimilarParameters = SimilarParameters()
    batch_recommend: BatchRecommendParameters = BatchRecommendParameters()
    request_files: RequestFileParameters = RequestFileParameters()

    @field_validator("pairs", mode="before")
    @classmethod
    def _a_few_pairs(cls, pairs: Any) -> Any:
        return _a_few_requests(
            pairs, "[userId, movieId] pairs", "[[1, 31]]", "pairs", "pair_requests"
        )

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
    cross_validation: CrossValidationParameters = CrossValidationParameters()
    tuning: TuningParameters | None = None

    @model_validator(mode="after")
    def _predefined_split_exists(self) -> ProjectParameters:
        check_predefined_folds(
            self.ingestion.dataset,
            [self.processing.split.fold],
            "processing.split.strategy",
            self.processing.split.strategy == "predefined",
        )
        cross_validation = self.cross_validation
        check_predefined_folds(
            self.ingestion.dataset,
            cross_validation.folds or [],
            "cross_validation.scheme",
            cross_validation.scheme == "predefined",
        )
        return self

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


def check_predefined_folds(
    dataset: str, folds: list[str], key: str, predefined: bool
) -> None:
    """A clear error when ``key`` asks for a predefined split ``dataset`` lacks, or
    names folds it does not have.

    Raises:
        ParameterError: Naming the release, the parameter and the valid folds.
    """
    if not predefined:
        return
    try:
        available = release_layout(dataset).folds
    except MovieLensError:
        return  # the ingestion block reports an unknown release itself
    if not available:
        raise ParameterError(
            f"'{key}' is 'predefined' but the release {dataset!r} (ingestion.dataset) "
            "ships no split files (only ml-100k does: u1..u5, ua, ub); use 'random', "
            "'temporal' or 'kfold'."
        )
    unknown = [fold for fold in folds if fold not in available]
    if unknown:
        raise ParameterError(
            f"'{key}' is 'predefined' but {dataset} has no fold(s) {unknown}; "
            f"valid: {', '.join(available)}."
        )
