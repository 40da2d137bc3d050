"""``training``: one block per model variant (the variant registry,
:mod:`rating_prediction.models.variants`, names each block's model)."""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, ClassVar, Generic, Literal

from pydantic import (
    AfterValidator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rating_prediction.parameters.base import (
    ModelParametersT,
    Parameters,
)
from rating_prediction.parameters.bounds import (
    Batches,
    BatchSize,
    BucketDays,
    Epochs,
    Factors,
    Iterations,
    NonNegativeEpochs,
    RefreshRate,
    RowCap,
    Seed,
    Threads,
)
from rating_prediction.parameters.trainer import TrainerParameters


class ScaleFromData(Parameters):
    """A block that once held ``rating_min`` / ``rating_max``: the range every model
    squashes or clips its predictions to is now the data set's recorded scale (the
    ``rating_scale`` dataset), so those keys are refused with where the scale comes
    from."""

    @model_validator(mode="before")
    @classmethod
    def _scale_comes_from_the_data(cls, values: Any) -> Any:
        if isinstance(values, dict):
            stale = [key for key in ("rating_min", "rating_max") if key in values]
            if stale:
                keys = " and ".join(stale)
                what = (
                    "are no longer parameters"
                    if stale[1:]
                    else "is no longer a parameter"
                )
                raise ValueError(
                    f"{keys} {what}: the rating scale now comes from the data. Every "
                    "model predicts on the scale ingestion records (the rating_scale "
                    "dataset, data/02_intermediate/rating_scale.json): MovieLens's "
                    "0.5..5 for a release or the synthetic sample; for a ratings file "
                    "of your own, declare ingestion.file.rating_scale (or let it be "
                    f"inferred from the data). Remove {keys} here"
                )
        return values


class InnerSigmoidArguments(ScaleFromData):
    """``training.inner_sigmoid.model``: the notebook model's constructor arguments."""

    embedding_dim: Factors = 5
    init_std: NonNegativeFloat = 0.1
    sparse: StrictBool = False


class BiasedMFArguments(ScaleFromData):
    """``training.biased_mf.model``: the biased matrix factorisation's arguments."""

    embedding_dim: Factors = 32
    init_std: NonNegativeFloat = 0.01
    factor_reg: NonNegativeFloat = 0.0
    bias_reg: NonNegativeFloat = 0.0
    sparse: StrictBool = False


class OptimizerParameters(Parameters):
    learning_rate: PositiveFloat
    weight_decay: NonNegativeFloat = 0.0


class VariantParameters(Parameters, Generic[ModelParametersT]):
    """``training.<variant>``: one model variant's training settings."""

    seed: Seed
    model: ModelParametersT
    optimizer: OptimizerParameters
    batch_size: BatchSize
    eval_batch_size: BatchSize
    max_epochs: Epochs
    min_epochs: NonNegativeEpochs
    patience: Epochs
    data_on_device: StrictBool = True
    optimizer_steps_per_training_step: Batches = 1
    progress_bar_refresh_rate: RefreshRate = 50
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
    """``training.bayesian_fm.features``: which features the relation blocks hold, all
    built from the fitted ratings (and the movies and users tables) only.

    ``time_bucket_days``: the rating date as a third block, one row per bucket of that
    many days from the fitted ratings' first day (``None``: no time feature; the
    served model then needs no timestamp). ``user_demographics``: the users table's
    age, gender, occupation and zip-code region (releases without them add nothing).
    ``release_year``: the year in the movie's title.
    """

    implicit: StrictBool = True  # user block: the movies the user rated
    flipped: StrictBool = True  # movie block: the users who rated the movie
    genres: StrictBool = True  # movie block: the movie's genres
    release_year: StrictBool = False  # movie block: the year in its title
    user_demographics: StrictBool = False  # user block: age, gender, occupation, zip
    time_bucket_days: BucketDays | None = None


class BayesianFMParameters(ScaleFromData):
    """``training.bayesian_fm``: myFM's Gibbs-sampled Bayesian factorisation machine.

    ``likelihood``: ``regression`` (Gaussian noise around the score) or
    ``ordered_probit`` (the rating levels of the fitted ratings as ordered classes,
    each sample with its own cutpoints; the prediction is the expected rating). ``n_iter``
    Gibbs samples are drawn; the last ``n_kept_samples`` are averaged (``None``: every
    one drawn; :attr:`kept_samples`). The exported model has ``kept_samples * rank``
    factors, so it bounds memory. The number of samples is chosen on val; with ``refit_on_train_val`` the final model is then
    sampled again on train + val. ``history_rows`` measures the per-sample train and
    val MSE on a seeded sample of at most that many rows of each (``None``: all);
    ``max_fit_ratings`` samples on a seeded sample of at most that many of the fitted
    ratings (``None``: all), bounding myFM's memory.
    """

    seed: Seed = 42
    likelihood: Literal["regression", "ordered_probit"] = "regression"
    rank: Factors = 10
    n_iter: Iterations = 100
    n_kept_samples: Iterations | None = 80
    init_stdev: PositiveFloat = 0.1
    features: BayesianFMFeatures = BayesianFMFeatures()
    refit_on_train_val: StrictBool = True
    history_rows: RowCap | None = None
    max_fit_ratings: RowCap | None = None

    @property
    def kept_samples(self) -> int:
        """The samples averaged: the last ``n_kept_samples``, or every one drawn."""
        return self.n_iter if self.n_kept_samples is None else self.n_kept_samples

    @model_validator(mode="after")
    def _kept_at_most_drawn(self) -> BayesianFMParameters:
        if self.kept_samples > self.n_iter:
            raise ValueError(
                f"n_kept_samples ({self.n_kept_samples}) must not exceed n_iter "
                f"({self.n_iter})"
            )
        return self


# EASE's items x items matrix is held about three times at its peak (the Gram
# matrix, its Cholesky factor, the inverse), in float32: 30,000 items is 10.8 GB.
EASE_MAX_ITEMS_CEILING = 30_000


class EaseParameters(Parameters):
    """``training.ease``: EASE^R (Steck 2019), a closed-form item-item ranker fitted on
    implicit feedback from the training ratings.

    Every training rating of at least ``min_rating`` (``None``: every rating) is an
    interaction, of weight 1 (``feedback: binary``) or its rating (``rating``). Only
    the ``max_items`` most-rated training movies (ties to the lower movie index) get
    weights: the model is a ``max_items`` x ``max_items`` matrix, so the cap bounds
    memory (about 12 * max_items^2 bytes at the fit's peak) and time; movies beyond
    it get no score from EASE and rank last. ``regularization`` is the L2 weight
    (lambda) added to the Gram matrix's diagonal. With ``refit_on_train_val`` the
    model is fitted again on train + val once its val NDCG@K is measured.
    """

    regularization: PositiveFloat = 2000.0
    feedback: Literal["binary", "rating"] = "rating"
    min_rating: NonNegativeFloat | None = None
    max_items: Annotated[StrictInt, Field(ge=1)] = 10_000
    refit_on_train_val: StrictBool = True

    @field_validator("max_items")
    @classmethod
    def _bounded(cls, max_items: int) -> int:
        if max_items > EASE_MAX_ITEMS_CEILING:
            peak = 12 * max_items**2 / 1e9
            raise ValueError(
                f"max_items {max_items:,} would hold a {max_items:,} x {max_items:,} "
                f"matrix about three times (about {peak:.0f} GB); at most "
                f"{EASE_MAX_ITEMS_CEILING:,}: lower training.ease.max_items (the "
                "most-rated movies are kept)"
            )
        return max_items


class ImplicitRankerParameters(Parameters):
    """What ``training.als`` and ``training.bpr`` share: factor tables fitted by
    benfred's ``implicit`` library on implicit feedback from the training ratings (every
    rating of at least ``min_rating``; ``None``: every rating), for a fixed number of
    ``iterations`` (nothing is chosen on val during the fit). ``seed`` seeds the
    initial factors; ``num_threads`` is the CPU threads of the fit (0: every core).
    With ``refit_on_train_val`` the model is fitted again on train + val once its val
    NDCG@K is measured."""

    factors: Factors
    iterations: Iterations
    min_rating: NonNegativeFloat | None = None
    seed: Seed = 42
    num_threads: Threads = 0
    refit_on_train_val: StrictBool = True


class AlsParameters(ImplicitRankerParameters):
    """``training.als``: implicit ALS (Hu, Koren & Volinsky 2008). Each interaction is
    a preference of confidence ``1 + alpha * value`` (the value: 1 for ``feedback:
    binary``, the rating for ``rating``); every other (user, movie) pair a 0 of
    confidence 1. ``regularization`` is the L2 weight of both factor tables; positive,
    it also keeps the user step that folds a new user in well posed."""

    factors: Factors = 104
    regularization: PositiveFloat = 39.1
    alpha: NonNegativeFloat = 1.15
    iterations: Iterations = 15
    feedback: Literal["binary", "rating"] = "rating"


class BprParameters(ImplicitRankerParameters):
    """``training.bpr``: Bayesian Personalized Ranking (Rendle et al. 2009), fitted by
    SGD with ``learning_rate`` and L2 weight ``regularization`` over ``iterations``
    epochs of sampled (user, interaction, other movie) triples. Its feedback is binary
    (which movies a user rated, at least ``min_rating``): there is no ``feedback``
    key. With ``num_threads`` other than 1 the SGD threads race (Hogwild), so two fits
    with the same seed differ slightly; ``num_threads: 1`` repeats exactly.

    BPR has no closed-form user step: a new user is folded in by ridge regression of
    their movies' factors onto a score of 1, of L2 weight ``fold_in_regularization``
    (:meth:`~rating_prediction.models.rankers.BprRanker.fold_in_user`); SGD's own
    ``regularization`` is far too weak for it."""

    factors: Factors = 41
    learning_rate: PositiveFloat = 0.0037
    regularization: NonNegativeFloat = 0.0038
    iterations: Iterations = 123
    fold_in_regularization: PositiveFloat = 10.0

    @model_validator(mode="before")
    @classmethod
    def _binary_feedback_only(cls, values: Any) -> Any:
        if isinstance(values, dict) and "feedback" in values:
            raise ValueError(
                "BPR learns from binary feedback only (which movies a user rated, "
                "at least min_rating): it has no interaction weights. Remove "
                "training.bpr.feedback (or use training.als, which weighs ratings)"
            )
        return values


# A Spark ALS grid fits every combination of its candidates on train, each a whole ALS
# fit on the cluster (minutes at scale): a hundred is already a long search.
MAX_SPARK_ALS_COMBINATIONS = 100
# Spark ALS's user and item blocks: each is a task of every iteration; more than a few
# times the cluster's cores only adds scheduling.
MAX_SPARK_ALS_BLOCKS = 10_000


class SparkAlsGridParameters(Parameters):
    """What ``training.spark_als`` and ``training.spark_als_implicit`` share: Spark
    MLlib's ALS (``pyspark.ml.recommendation.ALS``) with ``rank`` factors,
    ``reg_param`` (its ``regParam``: Spark weighs it by each user's and movie's number
    of ratings, ALS-WR) and ``max_iter`` iterations. Each is a list of candidates:
    every combination is fitted on train and the one with the best val figure is
    kept (a list of one value, or a single value as a tuned file writes it: no
    search); with ``refit_on_train_val`` it is then fitted again on train + val.
    ``seed`` seeds the initial factors; ``num_blocks`` is ALS's number of user and of
    item blocks (its tasks per iteration)."""

    GRID_KEYS: ClassVar[tuple[str, ...]] = ("rank", "reg_param", "max_iter")

    rank: Annotated[list[Factors], Field(min_length=1)] = [10]
    reg_param: Annotated[list[PositiveFloat], Field(min_length=1)] = [0.1]
    max_iter: Annotated[list[Iterations], Field(min_length=1)] = [10]
    seed: Seed = 42
    num_blocks: Annotated[StrictInt, Field(ge=1, le=MAX_SPARK_ALS_BLOCKS)] = 10
    refit_on_train_val: StrictBool = True

    def candidates(self) -> list[dict[str, Any]]:
        """Every combination of the candidate values, in the order of the lists
        (the last key varies fastest)."""
        names = self.grid_keys()
        return [
            dict(zip(names, values))
            for values in itertools.product(*(getattr(self, n) for n in names))
        ]

    def grid_keys(self) -> list[str]:
        """The keys whose values are candidates."""
        return list(self.GRID_KEYS)

    @model_validator(mode="before")
    @classmethod
    def _one_value_is_one_candidate(cls, values: Any) -> Any:
        """``rank: 50`` reads as ``rank: [50]`` (the Spark tuning's best trial is
        written so)."""
        if not isinstance(values, dict):
            return values
        return {
            key: [value] if key in cls.GRID_KEYS and _is_scalar(value) else value
            for key, value in values.items()
        }

    @model_validator(mode="after")
    def _bounded_search(self) -> SparkAlsGridParameters:
        combinations = math.prod(len(getattr(self, n)) for n in self.grid_keys())
        if combinations > MAX_SPARK_ALS_COMBINATIONS:
            raise ValueError(
                f"{combinations} combinations of {', '.join(self.grid_keys())} would "
                f"each be fitted on the cluster; at most "
                f"{MAX_SPARK_ALS_COMBINATIONS}: shorten the lists"
            )
        return self


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class SparkAlsParameters(SparkAlsGridParameters):
    """``training.spark_als``: explicit ALS for ratings. The global mean and
    regularised user and movie biases are fitted first, on Spark, as the bias baseline
    is (``bias_epochs`` alternating passes, movie then user biases, each
    ``sum(r - mu - other bias) / (bias_reg_<side> + count)``); ALS then factorises the
    residuals ``r - mu - b_u - b_m``. The model is exported as a biased MF, its
    predictions clipped to the data set's rating scale. The candidates are chosen on
    val RMSE."""

    bias_reg_user: NonNegativeFloat = 15.0
    bias_reg_movie: NonNegativeFloat = 10.0
    bias_epochs: Epochs = 3


class SparkAlsImplicitParameters(SparkAlsGridParameters):
    """``training.spark_als_implicit``: implicit ALS (``implicitPrefs``), a ranker.
    Each training rating of at least ``min_rating`` (``None``: every rating) is a
    preference of confidence ``1 + alpha * value`` (value 1 for ``feedback: binary``,
    the rating for ``rating``), as for ``training.als``. ``alpha`` is a list of
    candidates too; the candidates are chosen on val NDCG@K
    (``evaluation.ranking``)."""

    alpha: Annotated[list[NonNegativeFloat], Field(min_length=1)] = [1.0]
    feedback: Literal["binary", "rating"] = "rating"
    min_rating: NonNegativeFloat | None = None

    GRID_KEYS: ClassVar[tuple[str, ...]] = (*SparkAlsGridParameters.GRID_KEYS, "alpha")


class TrainingParameters(Parameters):
    """``training``: one block per model variant; the key names the variant."""

    inner_sigmoid: VariantParameters[InnerSigmoidArguments]
    biased_mf: VariantParameters[BiasedMFArguments]
    bayesian_fm: BayesianFMParameters
    ease: EaseParameters = EaseParameters()
    als: AlsParameters = AlsParameters()
    bpr: BprParameters = BprParameters()
    spark_als: SparkAlsParameters = SparkAlsParameters()
    spark_als_implicit: SparkAlsImplicitParameters = SparkAlsImplicitParameters()


def known_variant(variant: str) -> str:
    """``variant`` when ``training`` has a block for it; else the error a parameter
    check reports under its key."""
    if variant not in TrainingParameters.model_fields:
        raise ValueError(
            f"Unknown model variant {variant!r}; valid variants: "
            f"{', '.join(TrainingParameters.model_fields)}."
        )
    return variant


# A parameter naming a model variant.
VariantName = Annotated[str, AfterValidator(known_variant)]
