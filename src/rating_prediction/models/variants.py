"""The variant registry: every model variant the project trains, in one place.

An entry names the variant's model class (what its ``config.json`` rebuilds), its
parameter model (``training.<variant>``), its fit function and what it can do. The
training pipeline makes one namespace per entry, tuning and cross-validation fit through
the entry's function, evaluation scores every entry, and serving picks among them, so
adding a variant is one entry here (plus its parameter model and its conf block, which a
test holds against this table).

The fit function is named by its import path and imported on first use: the served
model and the evaluation read this table too, and must load without Lightning, myFM or
pyspark.

Each variant names its engine: the one-machine variants (:data:`VARIANTS`) are what the
default environment trains; the Spark ones (``spark_als``, ``spark_als_implicit``) are
fitted by ``kedro run --env spark`` only, and served by the same model classes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rating_prediction.models.factorization import (
    BiasedMatrixFactorization,
    InnerSigmoidModel,
    RatingModel,
)
from rating_prediction.models.rankers import AlsRanker, BprRanker, EaseRanker
from rating_prediction.models.sampled import SampledFactorization
from rating_prediction.parameters import Parameters
from rating_prediction.parameters.training import (
    AlsParameters,
    BayesianFMParameters,
    BiasedMFArguments,
    BprParameters,
    EaseParameters,
    InnerSigmoidArguments,
    SparkAlsImplicitParameters,
    SparkAlsParameters,
    VariantParameters,
)

# Where a variant is fitted: on one machine (the default environment's training,
# tuning, cross-validation and evaluation pipelines), or on Apache Spark (`kedro run
# --env spark`, the spark_modelling pipeline), its ratings never collected on the driver.
LOCAL = "local"
SPARK = "spark"


class UnknownVariantError(ValueError):
    """A variant name the registry does not hold."""


@dataclass(frozen=True)
class Variant:
    """One model variant.

    Attributes:
        name: The variant's name: its ``training.<name>`` block, Kedro namespace and
            ``metrics.json`` entry.
        model_class: The ``RatingModel`` its ``config.json`` and weights rebuild.
        parameters: The pydantic model of ``training.<name>``.
        fit: ``"module:function"`` of its fit function, called as
            ``fit(name, options, data)`` with ``data`` a
            :class:`~rating_prediction.training.data.TrainingData`; it returns the
            weights, the ``ModelConfig`` and the per-epoch (or per-sample) history.
        predicts_ratings: Whether it predicts ratings (scored on every split).
        ranks: Whether its scores rank movies (scored by the ranking metrics).
        folds_in: Whether a new user can be folded in from their own ratings.
        other_model_classes: The classes its ``config.json`` may name instead of
            ``model_class`` (``ModelConfig.model_class``): a closed table, so an
            untrusted config names a class, never code to import.
        engine: ``LOCAL`` or ``SPARK``: where it is fitted. A Spark variant's fit
            takes a :class:`~rating_prediction.training.spark_als.SparkTrainingData`
            and returns its factor tables (Spark DataFrames) in place of the
            weights, which the spark_modelling pipeline exports; the one-machine
            pipelines never see it (:data:`VARIANTS`), and its model class serves
            it like any other.
    """

    name: str
    model_class: type[RatingModel]
    parameters: type[Parameters]
    fit: str
    predicts_ratings: bool = True
    ranks: bool = True
    folds_in: bool = False
    other_model_classes: tuple[type[RatingModel], ...] = ()
    engine: str = LOCAL

    def model_class_named(self, name: str | None) -> type[RatingModel]:
        """The class a config of this variant rebuilds: ``model_class`` for ``None``,
        else the one of ``model_class`` and ``other_model_classes`` called ``name``.

        Raises:
            ValueError: Naming the classes it may be, for any other name.
        """
        if name is None:
            return self.model_class
        classes = {
            entry.__name__: entry
            for entry in (self.model_class, *self.other_model_classes)
        }
        if name not in classes:
            raise ValueError(
                f"model_class {name!r} is not a model class of the {self.name} "
                f"variant; valid: {', '.join(classes)}."
            )
        return classes[name]

    def fit_function(self) -> Callable[..., Any]:
        """The fit function, imported on first use."""
        module, function = self.fit.split(":")
        return getattr(importlib.import_module(module), function)


LIGHTNING_FIT = "rating_prediction.training.fit:fit_variant"
IMPLICIT_FIT = "rating_prediction.training.implicit_rankers:fit_variant"
SPARK_FIT = "rating_prediction.training.spark_als:fit_variant"

# Every variant of every engine: the training parameter blocks, the served model's
# configs and the error messages know them all.
ALL_VARIANTS: dict[str, Variant] = {
    entry.name: entry
    for entry in (
        # The notebook's model, faithfully.
        Variant(
            "inner_sigmoid",
            InnerSigmoidModel,
            VariantParameters[InnerSigmoidArguments],
            LIGHTNING_FIT,
        ),
        Variant(
            "biased_mf",
            BiasedMatrixFactorization,
            VariantParameters[BiasedMFArguments],
            LIGHTNING_FIT,
            folds_in=True,
        ),
        # myFM's Gibbs-sampled Bayesian FM, exported exactly as a biased MF: its
        # posterior mean over S samples is a biased MF with S * rank factors. With
        # ordered probit or a time feature it is not one: its S samples are exported
        # side by side (SampledFactorization, named by its config's model_class).
        Variant(
            "bayesian_fm",
            BiasedMatrixFactorization,
            BayesianFMParameters,
            "rating_prediction.training.bayesian_fm:fit_variant",
            folds_in=True,
            other_model_classes=(SampledFactorization,),
        ),
        # EASE^R, a closed-form item-item ranker on implicit feedback: its scores
        # rank movies but are not ratings; a new user is folded in from their own
        # movies without refitting (fold_in_scores: x B).
        Variant(
            "ease",
            EaseRanker,
            EaseParameters,
            "rating_prediction.training.ease:fit_variant",
            predicts_ratings=False,
            ranks=True,
            folds_in=True,
        ),
        # Factor rankers on the same implicit feedback, fitted by benfred's
        # `implicit` library: implicit ALS (confidence-weighted least squares) and BPR
        # (pairwise ranking by SGD). Rankers like ease: no ratings; a new user is
        # folded in by a least-squares step against the movie factors.
        Variant(
            "als",
            AlsRanker,
            AlsParameters,
            IMPLICIT_FIT,
            predicts_ratings=False,
            ranks=True,
            folds_in=True,
        ),
        Variant(
            "bpr",
            BprRanker,
            BprParameters,
            IMPLICIT_FIT,
            predicts_ratings=False,
            ranks=True,
            folds_in=True,
        ),
        # Spark MLlib's ALS (`--env spark`). Explicit, for ratings: the global mean
        # and regularised biases, then ALS on the residuals, exported as a biased MF.
        # Implicit (implicitPrefs), a ranker beside als: exported as an AlsRanker, so
        # the same served model answers with either, with no Spark at serving time.
        Variant(
            "spark_als",
            BiasedMatrixFactorization,
            SparkAlsParameters,
            SPARK_FIT,
            ranks=False,
            folds_in=True,
            engine=SPARK,
        ),
        Variant(
            "spark_als_implicit",
            AlsRanker,
            SparkAlsImplicitParameters,
            SPARK_FIT,
            predicts_ratings=False,
            ranks=True,
            folds_in=True,
            engine=SPARK,
        ),
    )
}
# The one-machine variants: what the default environment's pipelines train, tune,
# cross-validate, evaluate and serve.
VARIANTS: dict[str, Variant] = {
    name: entry for name, entry in ALL_VARIANTS.items() if entry.engine == LOCAL
}


def variant(name: str, also_valid: tuple[str, ...] = ()) -> Variant:
    """The registry's entry for ``name``.

    Raises:
        UnknownVariantError: Naming the known variants, after ``also_valid`` (the other
            values the caller accepts in place of a variant, such as ``best``).
    """
    if name not in ALL_VARIANTS:
        valid = ", ".join([*also_valid, *ALL_VARIANTS])
        raise UnknownVariantError(
            f"Unknown model variant {name!r}; valid variants: {valid}."
        )
    return ALL_VARIANTS[name]


def variants_of(engine: str) -> list[str]:
    """The names of every variant ``engine`` fits, in registry order."""
    return [name for name, entry in ALL_VARIANTS.items() if entry.engine == engine]


def variants_that(capability: str, engine: str = LOCAL) -> list[str]:
    """The names of the ``engine``'s variants with ``capability``
    (``predicts_ratings``, ``ranks`` or ``folds_in``), in registry order."""
    return [
        name
        for name, entry in ALL_VARIANTS.items()
        if entry.engine == engine and getattr(entry, capability)
    ]
