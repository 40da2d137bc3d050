"""Bayesian FM's kept Gibbs samples side by side: the served model of a bayesian_fm fit
with ordered probit or a per-rating time feature, whose expected rating is no biased MF.

With ``S`` kept samples of rank ``r``, each table stacks the samples' columns: sample
``s`` owns columns ``[s * r, (s + 1) * r)`` of the factor tables and column ``s`` of the
bias tables. Sample ``s`` scores a (user, movie, time bucket) triple as::

    f_s = intercepts[s] + user_bias[u, s] + movie_bias[i, s] + <U_u^s, M_i^s>
          (+ time_bias[t, s] + <T_t^s, U_u^s> + <T_t^s, M_i^s>   with time)

- regression: the prediction is ``mean_s f_s``, clipped to the rating scale;
- ordered probit over the rating ``levels`` (ascending) and each sample's ascending
  ``cutpoints``: ``P_s(y <= k) = Phi(cutpoints[s, k] - f_s)`` below the top level
  (``Phi`` the standard normal distribution function), and
  the prediction is the posterior mean of the expected rating,
  ``mean_s sum_k levels[k] P_s(y = k)``.

A timestamp ``t`` (unix seconds) falls in bucket
``clamp(floor((t - origin) / width), 0, n_buckets - 1)``; a row without one (none given,
or NaN) takes ``default_bucket``, the last bucket of the fitted data ("now"). Whole
catalogues (:meth:`SampledFactorization.score_users`) are scored at the default bucket.

Everything is computed in float64 (the served model reproduces the sampler's own
predictions to 1e-5) and in chunks of at most ``CHUNK_ELEMENTS`` values per table, so
memory stays bounded whatever the number of samples, pairs or movies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rating_prediction.models.factorization import RatingModel

# Values (float64) one chunk of per-sample work gathers or computes at once: 2 MB, so
# each pass over a chunk stays in cache (100k pairs of 50 samples of rank 10: 0.6 s on
# one thread, against 2.8 s with chunks of 32 MB).
CHUNK_ELEMENTS = 2**18
TIME_KEYS = ("origin", "width", "n_buckets", "default_bucket")
# A fold-in rating at either end of the scale has no finite latent score under ordered
# probit: it is read as this fraction of the end step inside the scale.
END_RATING_INSET = 0.25
# Bisection steps of the fold-in's latent scores: the bracket shrinks 2**-60-fold.
INVERSION_STEPS = 60
SQRT_HALF = math.sqrt(0.5)


@dataclass(frozen=True)
class TimeBuckets:
    """How a unix timestamp maps to a row of the time tables (``model_kwargs.time``)."""

    origin: float
    width: float
    n_buckets: int
    default_bucket: int

    @classmethod
    def from_kwargs(cls, time: dict[str, Any]) -> TimeBuckets:
        """``time`` checked: exactly ``TIME_KEYS``, finite numbers, ``width`` above 0,
        ``n_buckets`` at least 1 and ``default_bucket`` one of them."""
        if not isinstance(time, dict) or set(time) != set(TIME_KEYS):
            found = sorted(time) if isinstance(time, dict) else time
            raise ValueError(f"time must hold exactly {list(TIME_KEYS)}, got {found!r}")
        if not all(_is_finite_number(time[key]) for key in TIME_KEYS):
            raise ValueError(f"time must hold finite numbers, got {time!r}")
        buckets = cls(**time)
        if not buckets.width > 0:
            raise ValueError(f"time.width must be above 0, got {buckets.width!r}")
        if not (isinstance(buckets.n_buckets, int) and buckets.n_buckets >= 1):
            raise ValueError(f"time.n_buckets must be an integer >= 1: {time!r}")
        if not (
            isinstance(buckets.default_bucket, int)
            and 0 <= buckets.default_bucket < buckets.n_buckets
        ):
            raise ValueError(
                f"time.default_bucket must be an integer in 0..n_buckets - 1: {time!r}"
            )
        return buckets

    def of(self, timestamps: torch.Tensor | None, rows: int) -> torch.Tensor:
        """The bucket of each of ``rows`` timestamps (unix seconds; ``None`` or NaN:
        the default bucket)."""
        if timestamps is None:
            return torch.full((rows,), self.default_bucket, dtype=torch.int64)
        seconds = timestamps.to(torch.float64)
        buckets = torch.floor((seconds - self.origin) / self.width)
        buckets = buckets.clamp(0, self.n_buckets - 1)
        buckets = torch.where(torch.isnan(seconds), self.default_bucket, buckets)
        return buckets.to(torch.int64)


def _is_finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


ARGUMENTS = ("n_samples", "rank", "rating_min", "rating_max", "levels", "time")


def check_arguments(model_kwargs: dict[str, Any]) -> None:
    """``model_kwargs`` (config.json's) checked against the format before any table is
    built: the known arguments only, ``n_samples`` and ``rank`` integers of at least
    1, a finite rating scale, ``levels`` (:func:`check_levels`) on it and ``time``
    (:meth:`TimeBuckets.from_kwargs`); a ``ValueError`` naming the argument otherwise."""
    unknown = sorted(set(model_kwargs) - set(ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown arguments {unknown}; the arguments are {ARGUMENTS}")
    for name in ("n_samples", "rank"):
        value = model_kwargs.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")
    scale = model_kwargs.get("rating_min", 0.5), model_kwargs.get("rating_max", 5.0)
    if not all(map(_is_finite_number, scale)) or scale[0] > scale[1]:
        raise ValueError(f"rating_min and rating_max must be a scale, got {scale!r}")
    levels = check_levels(model_kwargs.get("levels"))
    if levels is not None and not scale[0] <= levels[0] <= levels[-1] <= scale[1]:
        raise ValueError(
            f"levels must lie on the rating scale {scale[0]}..{scale[1]}, got {levels}"
        )
    if model_kwargs.get("time") is not None:
        TimeBuckets.from_kwargs(model_kwargs["time"])


def check_levels(levels: Any) -> list[float] | None:
    """``levels`` (ordered probit's rating values), checked: ``None``, or at least two
    finite numbers in strictly ascending order."""
    if levels is None:
        return None
    if not isinstance(levels, list | tuple) or len(levels) < 2:
        raise ValueError(f"levels must list at least two ratings, got {levels!r}")
    if not all(_is_finite_number(level) for level in levels):
        raise ValueError(f"levels must be finite numbers, got {levels!r}")
    if any(low >= high for low, high in zip(levels, levels[1:], strict=False)):
        raise ValueError(f"levels must be strictly ascending, got {levels!r}")
    return [float(level) for level in levels]


def weight_shapes(
    n_users: int, n_movies: int, model_kwargs: dict[str, Any]
) -> dict[str, tuple[int, ...]]:
    """The state dict's tensor names and shapes of a model of ``model_kwargs`` (the
    format; checked by the served model's loader before any tensor is used)."""
    samples = int(model_kwargs.get("n_samples", 1))
    width = samples * int(model_kwargs.get("rank", 1))
    shapes = {
        "user_factors.weight": (n_users, width),
        "movie_factors.weight": (n_movies, width),
        "user_bias.weight": (n_users, samples),
        "movie_bias.weight": (n_movies, samples),
        "intercepts": (samples,),
    }
    time = model_kwargs.get("time")
    if time is not None:
        buckets = int(time["n_buckets"])
        shapes["time_factors.weight"] = (buckets, width)
        shapes["time_bias.weight"] = (buckets, samples)
    levels = model_kwargs.get("levels")
    if levels is not None:
        shapes["cutpoints"] = (samples, len(levels) - 1)
    return shapes


def unordered_cutpoints(cutpoints: torch.Tensor) -> int | None:
    """The first sample whose cutpoints descend somewhere (probabilities below 0);
    ``None`` when every sample's are ascending."""
    descending = (cutpoints[:, 1:] < cutpoints[:, :-1]).any(dim=1)
    bad = torch.nonzero(descending).ravel()
    return int(bad[0]) if bad.numel() else None


class SampledFactorization(RatingModel):
    """The ``S`` kept samples of a Bayesian FM (see the module's docstring).

    Nothing trains it in torch: its tables are filled from a bayesian_fm fit's export
    (``load_state_dict``) and only predict.
    """

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        *,
        n_samples: int = 1,
        rank: int = 1,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
        levels: list[float] | None = None,
        time: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(rating_min, rating_max)
        check_arguments(
            {
                "n_samples": n_samples,
                "rank": rank,
                "rating_min": rating_min,
                "rating_max": rating_max,
                "levels": levels,
                "time": time,
            }
        )
        self.n_samples, self.rank = n_samples, rank
        self.time = None if time is None else TimeBuckets.from_kwargs(time)
        levels = check_levels(levels)
        width = n_samples * rank
        self.user_factors = _zero_table(n_users, width)
        self.movie_factors = _zero_table(n_movies, width)
        self.user_bias = _zero_table(n_users, n_samples)
        self.movie_bias = _zero_table(n_movies, n_samples)
        self.intercepts = nn.Parameter(torch.zeros(n_samples))
        if self.time is not None:
            self.time_factors = _zero_table(self.time.n_buckets, width)
            self.time_bias = _zero_table(self.time.n_buckets, n_samples)
        self.cutpoints = (
            None
            if levels is None
            else nn.Parameter(torch.zeros(n_samples, len(levels) - 1))
        )
        # Not weights but the rating scale's steps: config.json holds them.
        self.register_buffer(
            "levels",
            None if levels is None else torch.tensor(levels, dtype=torch.float64),
            persistent=False,
        )
        # Never trained in torch: no gradients to track, whatever the caller's mode.
        self.requires_grad_(False)

    @property
    def default_bucket(self) -> int | None:
        """The time bucket of a row without a timestamp; ``None`` without time."""
        return None if self.time is None else self.time.default_bucket

    def id_tables(self, seen_users, seen_movies):
        return [
            (self.user_factors, seen_users),
            (self.user_bias, seen_users),
            (self.movie_factors, seen_movies),
            (self.movie_bias, seen_movies),
        ]

    def user_rows(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The factors ``(n, S * r)`` and biases ``(n, S)`` of ``users``; zeros for
        ``-1`` (unknown)."""
        return self.embed(self.user_factors, users), self.embed(self.user_bias, users)

    @torch.no_grad()
    def predict(
        self,
        users: torch.Tensor,
        movies: torch.Tensor,
        timestamps: torch.Tensor | None = None,
        *,
        user_rows: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The expected rating (float64) of each (user, movie) pair at its timestamp
        (unix seconds; ``None`` or NaN: the default bucket), clipped to the rating
        scale. ``user_rows`` (factors, biases), when given, replaces the model's user
        tables (folded-in users): ``users`` index its rows, ``-1`` unknown."""
        buckets = None if self.time is None else self.time.of(timestamps, len(users))
        if user_rows is not None:
            users, user_rows = _with_zero_row(users, user_rows)
        totals = torch.empty(len(users), dtype=torch.float64)
        step = self._pair_chunk_rows()
        for start in range(0, len(users), step):
            part = slice(start, start + step)
            if user_rows is None:
                factors, biases = self.user_rows(users[part])
            else:
                factors, biases = (rows[users[part]] for rows in user_rows)
            scores = self._pair_scores(
                factors,
                biases,
                movies[part],
                None if buckets is None else buckets[part],
            )
            totals[part] = self._summed_expectations(scores, slice(None))
        return self._clipped_mean(totals)

    @torch.no_grad()
    def predict_all_movies(self, users: torch.Tensor, n_movies: int) -> torch.Tensor:
        """The expected ratings ``(len(users), n_movies)`` of movies ``0..n_movies-1``
        at the default bucket."""
        return self.score_users(*self.user_rows(users))[:, :n_movies]

    @torch.no_grad()
    def score_users(
        self, user_factors: torch.Tensor, user_bias: torch.Tensor
    ) -> torch.Tensor:
        """The expected ratings (float64) of every movie for users of the given
        factors ``(n, S * r)`` and biases ``(n, S)`` (looked up or folded in), at the
        default bucket, clipped to the rating scale.

        A few movies at a time, so the float64 rows and per-sample scores held stay
        within ``CHUNK_ELEMENTS`` whatever the catalogue. Regression: the samples'
        mean score is one matrix product over the stacked factors; ordered probit:
        each sample's scores (its cutpoints make it nonlinear), one batched product."""
        users = self._user_terms(user_factors, user_bias)
        n_movies = self.movie_factors.weight.shape[0]
        widest = self.rank if self.cutpoints is None else max(self.rank, len(users[0]))
        step = max(1, CHUNK_ELEMENTS // (self.n_samples * widest))
        totals = torch.empty(len(users[0]), n_movies, dtype=torch.float64)
        for start in range(0, n_movies, step):
            movies = slice(start, start + step)
            totals[:, movies] = self._summed_movie_scores(
                users, self._movie_terms(movies)
            )
        return self._clipped_mean(totals)

    def _summed_movie_scores(
        self,
        users: tuple[torch.Tensor, torch.Tensor],
        movies: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """Summed over the samples, the expected ratings ``(n users, n movies)`` of
        users' and movies' terms (:meth:`_user_terms`, :meth:`_movie_terms`)."""
        (user_factors, user_offsets), (movie_factors, movie_offsets) = users, movies
        if self.cutpoints is None:
            return torch.addmm(
                user_offsets.sum(1, keepdim=True) + movie_offsets.sum(1),
                user_factors,
                movie_factors.T,
            )
        scores = torch.baddbmm(
            user_offsets.T[:, :, None] + movie_offsets.T[:, None, :],
            self._split_samples(user_factors).transpose(0, 1),
            self._split_samples(movie_factors).permute(1, 2, 0),
        )
        # Each sample's expected rating in float32, summed over the samples in
        # float64: the users x movies x samples x levels normal probabilities of a
        # whole catalogue are most of a ranking's time, and float32's erfc is four
        # times faster than float64's. The scores stay within 1e-6 of `predict`'s
        # (a test holds them to it), inside the served model's 1e-5 contract.
        return self._summed_expectations(scores.permute(1, 2, 0).float(), slice(None))

    def _user_terms(
        self, user_factors: torch.Tensor, user_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Users' factors and offsets in float64, the default bucket's time terms in
        the offsets: per sample, ``f_s = user offset + movie offset + <U^s, M^s>``."""
        user_factors, user_offsets = user_factors.double(), user_bias.double()
        if self.time is not None:
            time_factors = self.time_factors.weight[self.time.default_bucket].double()
            user_offsets = user_offsets + self._sample_dots(user_factors, time_factors)
        return user_factors, user_offsets

    def _movie_terms(self, movies: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``movies``' factors and offsets in float64 (the intercepts and the
        default bucket's time terms in the offsets), as :meth:`_user_terms`."""
        movie_factors = self.movie_factors.weight[movies].double()
        movie_offsets = (
            self.movie_bias.weight[movies].double() + self.intercepts.double()
        )
        if self.time is not None:
            bucket = self.time.default_bucket
            time_factors = self.time_factors.weight[bucket].double()
            movie_offsets += self.time_bias.weight[bucket].double()
            movie_offsets += self._sample_dots(movie_factors, time_factors)
        return movie_factors, movie_offsets

    def _pair_scores(
        self,
        user_factors: torch.Tensor,
        user_bias: torch.Tensor,
        movies: torch.Tensor,
        buckets: torch.Tensor | None,
    ) -> torch.Tensor:
        """Each sample's score ``(n, S)`` (float64) of each row's user and movie."""
        user_factors = user_factors.double()
        movie_factors = self.embed(self.movie_factors, movies).double()
        scores = (
            self.intercepts.double()
            + user_bias.double()
            + self.embed(self.movie_bias, movies).double()
            + self._sample_dots(user_factors, movie_factors)
        )
        if buckets is not None:
            time_factors = self.time_factors.weight[buckets].double()
            scores += self.time_bias.weight[buckets].double()
            scores += self._sample_dots(time_factors, user_factors + movie_factors)
        return scores

    def _split_samples(self, factors: torch.Tensor) -> torch.Tensor:
        """``(n, S * r)`` stacked factors as ``(n, S, r)``."""
        return factors.reshape(len(factors), self.n_samples, self.rank)

    def _sample_dots(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Per sample, the dot products ``(n, S)`` of two stacked factor rows (either
        may be one row, broadcast)."""
        product = first * second
        return product.reshape(*product.shape[:-1], self.n_samples, self.rank).sum(-1)

    def _summed_expectations(
        self, scores: torch.Tensor, samples: slice
    ) -> torch.Tensor:
        """The sum over the last axis of :meth:`_expectations`."""
        return self._expectations(scores, samples).sum(-1, dtype=torch.float64)

    def _expectations(self, scores: torch.Tensor, samples: slice) -> torch.Tensor:
        """Each sample's expected rating given its scores, the last axis of
        ``scores`` being the model's ``samples``: the scores themselves for
        regression; for ordered probit ``levels[-1] - sum_k (levels[k+1] -
        levels[k]) * Phi(cutpoints[s, k] - f_s)`` (``sum_k levels[k] P(y = k)``
        summed by parts), one cutpoint at a time so memory stays at a few arrays of
        ``scores``' size.

        ``Phi(c - f)`` is computed as ``erfc((f - c) / sqrt(2)) / 2``: the function
        ``torch.special.ndtr`` computes, as exactly (at most 2.2e-16 from scipy's
        ``ndtr`` over -40..40, as ``torch.special.ndtr``) and six times faster in
        float64: the score matrices of recommendations and ranking spend most of their
        time here."""
        if self.cutpoints is None:
            return scores
        scaled_cutpoints = self.cutpoints[samples].double() * SQRT_HALF
        scaled_cutpoints = scaled_cutpoints.to(scores.dtype)
        steps = self.levels.diff().tolist()
        scaled = scores * SQRT_HALF
        expected = torch.full_like(scores, float(self.levels[-1]))
        above = torch.empty_like(scores)
        for k, step in enumerate(steps):
            torch.sub(scaled, scaled_cutpoints[:, k], out=above)
            torch.special.erfc(above, out=above)
            expected.sub_(above, alpha=step / 2)
        return expected

    def _clipped_mean(self, totals: torch.Tensor) -> torch.Tensor:
        return (totals / self.n_samples).clamp_(self.rating_min, self.rating_max)

    def _pair_chunk_rows(self) -> int:
        """Pairs scored at once: their gathered rows (``S * r`` values per table) or
        per-sample probabilities (``S`` per level) fit in ``CHUNK_ELEMENTS``."""
        levels = 0 if self.levels is None else len(self.levels)
        per_row = self.n_samples * max(self.rank, levels, 1)
        return max(1, CHUNK_ELEMENTS // per_row)

    @torch.no_grad()
    def fold_in_problem(
        self, movies: torch.Tensor, ratings: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample, the regressors ``(S, n, r)`` and targets ``(S, n)`` of a new
        user's ridge from ratings of known ``movies``, at the default bucket: sample
        ``s`` fits ``target = b^s + <U^s, regressor>``, its regressors the movies'
        factors (plus the bucket's), its targets the ratings less the terms without
        the user.

        Ordered probit (an approximation): each rating is first mapped to the latent
        score whose expected rating under that sample is the rating (an end rating
        ``END_RATING_INSET`` of a step inside the scale, whose own latent score is
        infinite), then fitted on that latent scale by the same ridge."""
        factors = self._split_samples(self.movie_factors.weight[movies].double())
        offsets = self.movie_bias.weight[movies].double() + self.intercepts.double()
        if self.time is not None:
            bucket = self.time.default_bucket
            time_factors = self.time_factors.weight[bucket].double()
            offsets += self.time_bias.weight[bucket].double()
            offsets += (factors * self._split_samples(time_factors[None])).sum(-1)
            factors = factors + self._split_samples(time_factors[None])
        targets = ratings.double()[:, None].expand(-1, self.n_samples)
        if self.cutpoints is not None:
            targets = self._latent_scores(targets)
        return factors.transpose(0, 1), (targets - offsets).T

    def _latent_scores(self, ratings: torch.Tensor) -> torch.Tensor:
        """Per sample (the last axis), the latent score whose expected rating is each
        of ``ratings`` (kept ``END_RATING_INSET`` of a step inside the levels), by
        bisection: the expected rating rises with the score."""
        steps = self.levels.diff()
        wanted = ratings.clamp(
            float(self.levels[0] + END_RATING_INSET * steps[0]),
            float(self.levels[-1] - END_RATING_INSET * steps[-1]),
        )
        cutpoints = self.cutpoints.double()
        # Past every cutpoint by 10 standard deviations the expected rating is an
        # end level to within 1e-23: the wanted ones lie between.
        low = (cutpoints.min() - 10.0).expand_as(wanted).clone()
        high = (cutpoints.max() + 10.0).expand_as(wanted).clone()
        for _ in range(INVERSION_STEPS):
            middle = (low + high) / 2
            expected = self._expectations(middle, slice(None))
            rising = expected < wanted
            low = torch.where(rising, middle, low)
            high = torch.where(rising, high, middle)
        return (low + high) / 2


def _zero_table(rows: int, columns: int) -> nn.Embedding:
    """A table of zeros: the tables are filled from an export, never trained here."""
    table = nn.Embedding(rows, columns)
    nn.init.zeros_(table.weight)
    return table


def _with_zero_row(
    users: torch.Tensor, user_rows: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``users`` with ``-1`` pointing at a zero row appended to each of ``user_rows``."""
    factors, biases = user_rows
    factors = torch.cat([factors, factors.new_zeros(1, factors.shape[1])])
    biases = torch.cat([biases, biases.new_zeros(1, biases.shape[1])])
    return torch.where(users < 0, len(factors) - 1, users), (factors, biases)
