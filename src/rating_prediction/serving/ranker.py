"""The served ranker: which trained ranker answers ``recommend``, fold-in and
``similar``, and how it reads a new user's ratings as implicit feedback.

The rating model answers ``predict`` (:func:`~.bundle.select_served_variant`); a ranker
(a variant that ranks but predicts no ratings, such as ``ease``) ranks better than a
rating model's predicted ratings, so the served model recommends with the ranker of the
highest held-out val NDCG@K (``best_val_ndcg`` in its ``config.json``) when one was
trained, or the one ``inference.served_ranker`` names (``none``: the rating model, as
before rankers were served).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from rating_prediction.models.config import ModelConfig
from rating_prediction.models.variants import variant, variants_that
from rating_prediction.parameters import Parameters, parse

BEST_RANKER = "best"
NO_RANKER = "none"


def ranker_variants() -> list[str]:
    """The variants that rank movies but predict no ratings, in registry order: the
    ones that may answer ``recommend``, fold-in and ``similar`` beside the rating
    model."""
    rating_models = set(variants_that("predicts_ratings"))
    return [name for name in variants_that("ranks") if name not in rating_models]


def select_served_ranker(
    held_out_val_ndcg: dict[str, float | None], served_ranker: str
) -> str | None:
    """The ranker to serve among the trained ones (``held_out_val_ndcg``: each trained
    ranker's ``best_val_ndcg``), or ``None`` for the rating model.

    ``best``: the highest held-out val NDCG@K; a ranker without one ranks below any
    with one, and equal ones go to the registry order. ``none``: ``None``. A ranker's
    name: that ranker when it was trained, else ``None`` (nothing to serve).

    Raises:
        ValueError: If ``served_ranker`` is none of ``best``, ``none`` or a ranker's
            name (a rating model, an unknown name), listing the valid values.
    """
    if served_ranker == NO_RANKER:
        return None
    if served_ranker != BEST_RANKER:
        valid = ", ".join([BEST_RANKER, NO_RANKER, *ranker_variants()])
        if served_ranker not in ranker_variants():
            raise ValueError(
                f"inference.served_ranker {served_ranker!r} is not a ranker (a "
                "variant that ranks movies and predicts no ratings): choose one of "
                f"{valid}."
            )
        return served_ranker if served_ranker in held_out_val_ndcg else None
    trained = [name for name in ranker_variants() if name in held_out_val_ndcg]
    if not trained:
        return None
    # max keeps the first of equal keys: the registry order breaks ties.
    return max(trained, key=lambda name: held_out_ndcg_key(held_out_val_ndcg[name]))


def held_out_ndcg_key(ndcg: float | None) -> tuple[bool, float]:
    """The order of rankers by held-out val NDCG@K: one without a figure ranks below
    any with one."""
    return (ndcg is not None, ndcg if ndcg is not None else 0.0)


@dataclass(frozen=True)
class RankerFeedback:
    """How a ranker's fit read ratings as implicit feedback, so a new user's ratings
    are read alike: each rating of at least ``min_rating`` (``None``: every rating) is
    an interaction, of value 1 (``binary``) or the rating (``rating``).

    Recorded in the served model's ``serving.json`` (``ranker_feedback``), from the
    ranker's ``training.<variant>`` block.
    """

    feedback: Literal["binary", "rating"] = "binary"
    min_rating: float | None = None

    @classmethod
    def of(cls, options: Parameters) -> RankerFeedback:
        """The feedback settings of a ranker's parameters (``training.<variant>``);
        a ranker without them reads every rating as a binary interaction."""
        return cls(
            feedback=getattr(options, "feedback", "binary"),
            min_rating=getattr(options, "min_rating", None),
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RankerFeedback:
        """The settings as ``serving.json`` holds them; a clear error otherwise."""
        feedback, min_rating = values["feedback"], values["min_rating"]
        if feedback not in ("binary", "rating"):
            raise ValueError(f"feedback {feedback!r} is not 'binary' or 'rating'")
        return cls(feedback, None if min_rating is None else float(min_rating))

    def as_dict(self) -> dict[str, Any]:
        return {"feedback": self.feedback, "min_rating": self.min_rating}

    def interactions(
        self, movies: np.ndarray, ratings: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mapped ``movies`` (int64) a user's ``ratings`` make interactions of,
        and their values (float32)."""
        ratings = np.asarray(ratings, dtype=np.float64)
        kept = (
            np.ones(len(ratings), dtype=bool)
            if self.min_rating is None
            else ratings >= self.min_rating
        )
        values = np.ones(kept.sum()) if self.feedback == "binary" else ratings[kept]
        return (
            torch.from_numpy(np.asarray(movies, dtype=np.int64)[kept]),
            torch.from_numpy(values.astype(np.float32)),
        )


def feedback_of(ranker: str, training: dict[str, Any]) -> RankerFeedback:
    """``ranker``'s feedback settings from the ``training`` parameter block (its
    defaults when the block has none for it, as the fit had)."""
    options = parse(
        variant(ranker).parameters, training.get(ranker, {}), f"training.{ranker}"
    )
    return RankerFeedback.of(options)


@dataclass(frozen=True, eq=False)
class RankerChoice:
    """The trained ranker chosen to answer ``recommend``, fold-in and ``similar``: its
    config, weights and feedback settings; ``config`` ``None`` when none was (the
    rating model answers them). A value rather than ``None``: Kedro saves no ``None``.
    """

    config: ModelConfig | None = None
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    feedback: RankerFeedback = field(default_factory=RankerFeedback)
