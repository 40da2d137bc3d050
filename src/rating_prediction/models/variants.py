"""The variant registry: every model variant the project trains, in one place.

An entry names the variant's model class (what its ``config.json`` rebuilds), its
parameter model (``training.<variant>``), its fit function and what it can do. The
training pipeline makes one namespace per entry, tuning and cross-validation fit through
the entry's function, evaluation scores every entry, and serving picks among them, so
adding a variant is one entry here (plus its parameter model and its conf block, which a
test holds against this table).

The fit function is named by its import path and imported on first use: the served
model and the evaluation read this table too, and must load without Lightning or myFM.
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
from rating_prediction.parameters import Parameters
from rating_prediction.parameters.training import (
    AlsParameters,
    BayesianFMParameters,
    BiasedMFArguments,
    BprParameters,
    EaseParameters,
    InnerSigmoidArguments,
    VariantParameters,
)


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
    """

    name: str
    model_class: type[RatingModel]
    parameters: type[Parameters]
    fit: str
    predicts_ratings: bool = True
    ranks: bool = True
    folds_in: bool = False

    def fit_function(self) -> Callable[..., Any]:
        """The fit function, imported on first use."""
        module, function = self.fit.split(":")
        return getattr(importlib.import_module(module), function)


LIGHTNING_FIT = "rating_prediction.training.fit:fit_variant"
IMPLICIT_FIT = "rating_prediction.training.implicit_rankers:fit_variant"

VARIANTS: dict[str, Variant] = {
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
        # posterior mean over S samples is a biased MF with S * rank factors.
        Variant(
            "bayesian_fm",
            BiasedMatrixFactorization,
            BayesianFMParameters,
            "rating_prediction.training.bayesian_fm:fit_variant",
            folds_in=True,
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
    )
}


def variant(name: str, also_valid: tuple[str, ...] = ()) -> Variant:
    """The registry's entry for ``name``.

    Raises:
        UnknownVariantError: Naming the known variants, after ``also_valid`` (the other
            values the caller accepts in place of a variant, such as ``best``).
    """
    if name not in VARIANTS:
        valid = ", ".join([*also_valid, *VARIANTS])
        raise UnknownVariantError(
            f"Unknown model variant {name!r}; valid variants: {valid}."
        )
    return VARIANTS[name]


def variants_that(capability: str) -> list[str]:
    """The names of the variants with ``capability`` (``predicts_ratings``, ``ranks``
    or ``folds_in``), in registry order."""
    return [name for name, entry in VARIANTS.items() if getattr(entry, capability)]
