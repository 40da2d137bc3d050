"""Which of bayesian_fm's candidate features reach the accuracy target of issue #25: myFM
called directly on the project's own splits, one configuration at a time.

A configuration is named by ``+``-joined tokens on top of ``base`` (today's defaults:
regression, rank 13, 80 samples, init_stdev 0.0516, the flipped implicit features and
the genres; :class:`~rating_prediction.training.bayesian_fm.features.RelationBlocks`
builds every block from the fitted ratings only):

- ``probit``: ``MyFMOrderedProbit`` over the rating levels of the fitted ratings,
  predicting the expected rating ``proba @ levels``;
- ``time`` / ``timeN``: the rating date in buckets of one / N days from the first fitted
  day, a third relation block (myFM's ml-100k and ml-1m examples use the day as a
  categorical feature);
- ``year``: the year in the movie's title, one-hot, in the movie block;
- ``implicit``: the movies the user rated, in the user block; ``unflipped``: without
  the users who rated the movie in the movie block;
- ``user_day``: the (user, day) pair as one more block (timeSVD++'s ``b_{u,t}``; not in
  the project: it measured no better than ``time``);
- ``nN``: N samples drawn; ``kN``: only the last N kept (default: all); ``rN``: rank N;
  ``sX``: init_stdev X.

Protocol per split, as the project's fit: sample on train, record the running posterior
mean's val and test RMSE after every kept sample (predictions clipped to 0.5..5), choose
the number of samples on val; then (by default, as the project) sample that many again
on train + val and report its test RMSE; with ``--no-refit`` the test RMSE of the chain
on train at the chosen count. Splits: the project's ``kfold`` folds
(``parameters_cross_validation.yml``: 5 folds, val 0.1 of the rest, seed 42) and its
default random 70/20/10 split (seed 42), every movie kept.

Run from the project root, with ``nice`` on a shared machine (one core; a configuration
takes about 10 s to 60 s per split and chain)::

    python benchmarks/bayesian_fm_features.py --configs base,probit+time+year+n200
    python benchmarks/bayesian_fm_features.py --splits random --no-refit
    python benchmarks/bayesian_fm_features.py --check-probit

``--study N`` adds N trials to the Optuna study ``bayesian_fm_issue25`` (``--storage``,
``sqlite:///optuna.db`` by default) through the project's ``run_study``, on the default
random split's val, the search space of ``conf/base/parameters_tuning.yml``.
``--check-probit`` checks myFM's ordered probit convention, ``P(y <= k) = Phi(c_k - f)``
below the top level, against its ``predict_proba``. The output is one line per split
and configuration, then a markdown table: val and test RMSE per configuration, mean +-
sd over the folds, and the random split's.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import scipy.sparse as sps
import yaml
from scipy.stats import norm

from rating_prediction.data.splitting import split_by_label, split_labels
from rating_prediction.movielens import locate_release, read_movies, read_ratings
from rating_prediction.parameters import BayesianFMFeatures, TuningParameters, parse
from rating_prediction.pipelines.data_processing.nodes import (
    apply_id_mappings,
    create_movie_mapping,
    create_user_mapping,
)
from rating_prediction.training.bayesian_fm.features import (
    DAY_SECONDS,
    RelationBlocks,
    side_features,
)
from rating_prediction.training.bayesian_fm.sampling import (
    expected_ratings,
    rating_levels,
    targets,
    without_myfms_own_bar,
)
from rating_prediction.training.data import TrainingData
from rating_prediction.training.tuning import best_parameters, run_study

with warnings.catch_warnings():  # myFM 0.4 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import myfm

SCALE = (0.5, 5.0)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The study's first two trials: the former defaults and this benchmark's pick.
FORMER_DEFAULTS = {
    "likelihood": "regression",
    "rank": 13,
    "n_iter": 80,
    "init_stdev": 0.0516,
    "features.implicit": False,
    "features.flipped": True,
    "features.genres": True,
    "features.release_year": False,
    "features.user_demographics": False,
    "features.time_bucket_days": None,
}
BENCHMARK_PICK = FORMER_DEFAULTS | {
    "likelihood": "ordered_probit",
    "n_iter": 200,
    "features.release_year": True,
    "features.time_bucket_days": 1,
}
Split = tuple[str, pl.DataFrame, pl.DataFrame, pl.DataFrame]


@dataclass(frozen=True)
class Config:
    """One configuration: the likelihood, the feature families, the sampler."""

    name: str
    probit: bool = False
    implicit: bool = False
    flipped: bool = True
    time_days: int | None = None
    user_day: bool = False
    year: bool = False
    rank: int = 13
    n_iter: int = 80
    kept: int | None = None
    init_stdev: float = 0.0516

    @property
    def burn_in(self) -> int:
        return 0 if self.kept is None else self.n_iter - self.kept


FLAGS = ("probit", "implicit", "user_day", "year")
NUMBERS = {"n": ("n_iter", int), "k": ("kept", int), "r": ("rank", int)}


def parse_config(name: str) -> Config:
    """A configuration from its name (see the module docstring)."""
    config = Config(name)
    for token in name.split("+"):
        if token == "base":
            continue
        if token in FLAGS:
            config = replace(config, **{token: True})
        elif token == "unflipped":
            config = replace(config, flipped=False)
        elif token.startswith("time"):
            config = replace(config, time_days=int(token[4:] or 1))
        elif token.startswith("s"):
            config = replace(config, init_stdev=float(token[1:]))
        elif token[0] in NUMBERS and token[1:].isdigit():
            field, kind = NUMBERS[token[0]]
            config = replace(config, **{field: kind(token[1:])})
        else:
            raise SystemExit(f"Unknown token {token!r} in configuration {name!r}")
    return config


@dataclass(frozen=True)
class Data:
    """The mapped ratings (sorted by the mapped ids) and the side tables."""

    ratings: pl.DataFrame
    movies: pl.DataFrame
    movie_mapping: pl.DataFrame
    user_mapping: pl.DataFrame

    @property
    def n_users(self) -> int:
        return self.user_mapping.height


def load(raw_dir: Path, release: str) -> Data:
    """The release's ratings mapped as data_processing maps them (every movie kept)."""
    source = locate_release(raw_dir, release)
    if source is None:
        raise SystemExit(f"{release} is not under {raw_dir} (zip or folder)")
    ratings = read_ratings(source)
    users, movies = create_user_mapping(ratings), create_movie_mapping(ratings)
    mapped = apply_id_mappings(ratings, users, movies)
    return Data(mapped, read_movies(source), movies, users)


def splits(data: Data, which: list[str]) -> Iterator[Split]:
    """``(name, train, val, test)``: the kfold folds, then the default random split."""
    if "kfold" in which:
        for fold in range(5):
            labels = split_labels(
                data.ratings, "kfold", k=5, fold_index=fold, val_fraction=0.1, seed=42
            )
            yield (f"fold{fold + 1}", *split_by_label(data.ratings, labels))
    if "random" in which:
        labels = split_labels(
            data.ratings, "random", fractions=(0.7, 0.2, 0.1), seed=42
        )
        yield ("random", *split_by_label(data.ratings, labels))


class Features:
    """The relation blocks of one configuration, built from ``fitted`` only by the
    project's :class:`RelationBlocks`, and the benchmark's (user, day) block."""

    def __init__(self, config: Config, data: Data, fitted: pl.DataFrame) -> None:
        switches = BayesianFMFeatures(release_year=config.year)
        tables = {"movies": data.movies, "movie_mapping": data.movie_mapping}
        self.blocks = RelationBlocks.from_ratings(
            fitted,
            (data.n_users, data.movie_mapping.height),
            implicit=config.implicit,
            flipped=config.flipped,
            side=side_features(switches, tables),
            time_bucket_days=config.time_days,
        )
        self.pairs = np.unique(user_days(fitted)) if config.user_day else None
        self.groups = list(self.blocks.groups)
        if self.pairs is not None:
            self.groups.append(len(self.pairs))

    def for_rows(self, ratings: pl.DataFrame) -> list[myfm.RelationBlock]:
        blocks = self.blocks.for_rows(ratings)
        if self.pairs is not None:
            keys = user_days(ratings)
            position = np.searchsorted(self.pairs, keys).clip(0, len(self.pairs) - 1)
            # A pair no fitted rating has points at the last row, all zero.
            index = np.where(self.pairs[position] == keys, position, len(self.pairs))
            rows = sps.eye(len(self.pairs) + 1, len(self.pairs), format="csr")
            blocks.append(myfm.RelationBlock(index.astype(np.int64), rows))
        return blocks


def user_days(ratings: pl.DataFrame) -> np.ndarray:
    """One key per (user, UTC day) of ``ratings``."""
    days = ratings["timestamp"].to_numpy() // DAY_SECONDS
    return ratings["userIdMapped"].to_numpy().astype(np.int64) * 1_000_000 + days


class Tracker:
    """The running posterior mean's RMSE on each tracked split after every kept
    sample (the burn-in's samples are not averaged)."""

    def __init__(self, tracked, features: Features, config: Config, levels) -> None:
        self.targets = {name: frame["rating"].to_numpy() for name, frame in tracked}
        self.relations = {name: features.for_rows(frame) for name, frame in tracked}
        self.levels, self.burn_in = levels, config.burn_in
        self.sums = dict.fromkeys(self.targets, 0.0)
        self.rmse: dict[str, list[float]] = {name: [] for name in self.targets}

    def __call__(self, iteration, sample, hyper, history):
        if iteration < self.burn_in:
            return False, None
        for name, target in self.targets.items():
            prediction = expected_ratings(sample, self.relations[name], self.levels)
            self.sums[name] = self.sums[name] + prediction
            mean = np.clip(self.sums[name] / (iteration - self.burn_in + 1), *SCALE)
            self.rmse[name].append(float(np.sqrt(np.mean((mean - target) ** 2))))
        return False, None


def sample_chain(
    config: Config, fitted, features: Features, n_iter: int, callback=None
):
    """myFM on ``fitted``: ``n_iter`` samples, the last ``n_iter - burn-in`` kept."""
    levels = rating_levels(fitted) if config.probit else None
    sampler = myfm.MyFMOrderedProbit if config.probit else myfm.MyFMRegressor
    model = sampler(rank=config.rank, init_stdev=config.init_stdev, random_seed=42)
    with without_myfms_own_bar():
        model.fit(
            None,
            targets(fitted, levels),
            X_rel=features.for_rows(fitted),
            n_iter=n_iter,
            n_kept_samples=n_iter - config.burn_in,
            group_shapes=features.groups,
            callback=callback,
        )
    return model, levels


def run_split(config: Config, data: Data, split: Split, refit: bool):
    """``(val RMSE at the chosen count, test RMSE, samples drawn, seconds)``."""
    _, train, val, test = split
    started = time.perf_counter()
    features = Features(config, data, train)
    levels = rating_levels(train) if config.probit else None
    tracker = Tracker([("val", val), ("test", test)], features, config, levels)
    sample_chain(config, train, features, config.n_iter, tracker)
    best = int(np.argmin(tracker.rmse["val"]))
    val_rmse, test_rmse = tracker.rmse["val"][best], tracker.rmse["test"][best]
    drawn = config.burn_in + best + 1
    if refit:
        fitted = pl.concat([train, val])
        features = Features(config, data, fitted)
        model, levels = sample_chain(config, fitted, features, drawn)
        test_rmse = rmse_of(model, features, test, levels)
    return val_rmse, test_rmse, drawn, time.perf_counter() - started


def rmse_of(model, features: Features, ratings: pl.DataFrame, levels) -> float:
    relations = features.for_rows(ratings)
    if levels is None:
        prediction = model.predict(None, relations)
    else:
        prediction = model.predict_proba(None, relations) @ np.asarray(levels)
    prediction = np.clip(prediction, *SCALE)
    return float(np.sqrt(np.mean((prediction - ratings["rating"].to_numpy()) ** 2)))


def check_probit(data: Data) -> None:
    """``P(y <= k) = Phi(c_k - f)`` below the top level, against ``predict_proba``."""
    _, train, val, _ = next(splits(data, ["random"]))
    config = parse_config("probit+n5")
    features = Features(config, data, train)
    model, levels = sample_chain(config, train, features, config.n_iter)
    relations = features.for_rows(val)
    empty = sps.csr_matrix((val.height, 0))
    ours = np.zeros((val.height, len(levels)))
    for sample in model.predictor_.samples:
        score = np.asarray(sample.predict_score(empty, relations))
        below = norm.cdf(np.asarray(sample.cutpoints[0])[None, :] - score[:, None])
        cumulative = np.hstack([below, np.ones((val.height, 1))])
        ours += np.diff(cumulative, axis=1, prepend=0.0)
    ours /= len(model.predictor_.samples)
    gap = np.abs(ours - model.predict_proba(None, relations)).max()
    ascending = all(
        np.all(np.diff(sample.cutpoints[0]) > 0) for sample in model.predictor_.samples
    )
    print(f"levels {list(levels)}")
    print(f"max |Phi(c_k - f) differences - predict_proba| = {gap:.2e}")
    print(f"every sample's cutpoints ascending: {ascending}")


def tuning_study(data: Data, n_trials: int, storage: str) -> None:
    """The tuning pipeline's search (``run_study``: conf/base's search space and
    bayesian_fm block, trained on train and scored on val of the default random split)
    as the study ``bayesian_fm_issue25`` in ``storage``; a new study first tries the
    former defaults and this benchmark's pick. Prints the best trial as the tuned
    parameters file holds it."""
    conf = PROJECT_ROOT / "conf" / "base"
    training = yaml.safe_load((conf / "parameters_training.yml").read_text())
    tuning = yaml.safe_load((conf / "parameters_tuning.yml").read_text())["tuning"]
    tuning |= {"n_trials": n_trials, "study_name": "bayesian_fm_issue25"}
    settings = parse(TuningParameters, tuning | {"storage": storage}, "tuning")
    study = optuna.create_study(
        study_name=settings.study_name, storage=storage, load_if_exists=True
    )
    if not study.trials:
        study.enqueue_trial(FORMER_DEFAULTS)
        study.enqueue_trial(BENCHMARK_PICK)
    _, train, val, _ = next(splits(data, ["random"]))
    # This release has no users file: the users table ingestion makes of it, every
    # demographic null (user_demographics then adds nothing).
    users = data.user_mapping.select(
        "userId",
        pl.lit(None, pl.Int32).alias("age"),
        *(pl.lit(None, pl.String).alias(c) for c in ("gender", "occupation", "zip")),
    )
    fit_data = TrainingData(
        train=train,
        val=val,
        n_users=data.n_users,
        n_movies=data.movie_mapping.height,
        movies=data.movies,
        movie_mapping=data.movie_mapping,
        users=users,
        user_mapping=data.user_mapping,
    )
    study = run_study(settings, training["training"]["bayesian_fm"], fit_data)
    print(yaml.safe_dump(best_parameters(study, settings), sort_keys=False))


def summary(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "-"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table_row(name: str, results: dict[str, tuple]) -> str:
    folds = [value for key, value in results.items() if key.startswith("fold")]
    random_split = results.get("random")
    random_cells = (
        f"{random_split[0]:.4f} | {random_split[1]:.4f}" if random_split else "- | -"
    )
    seconds = sum(value[3] for value in results.values())
    return (
        f"| {name} | {summary([v[0] for v in folds])} | "
        f"{summary([v[1] for v in folds])} | {random_cells} | {seconds:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--release", default="ml-latest-small")
    parser.add_argument("--configs", default="base,probit+time+year+n200")
    parser.add_argument("--splits", default="kfold,random")
    parser.add_argument("--no-refit", action="store_true")
    parser.add_argument("--check-probit", action="store_true")
    parser.add_argument("--study", type=int, metavar="N_TRIALS")
    parser.add_argument("--storage", default="sqlite:///optuna.db")
    args = parser.parse_args()
    data = load(args.raw_dir, args.release)
    if args.check_probit:
        check_probit(data)
        return
    if args.study:
        tuning_study(data, args.study, args.storage)
        return
    rows = []
    for name in args.configs.split(","):
        config, results = parse_config(name), {}
        for split in splits(data, args.splits.split(",")):
            results[split[0]] = run_split(config, data, split, not args.no_refit)
            val, test, drawn, seconds = results[split[0]]
            print(
                f"{name} {split[0]}: val {val:.4f} test {test:.4f}, {drawn} samples, "
                f"{seconds:.0f} s",
                flush=True,
            )
        rows.append(table_row(name, results))
    print(
        "| configuration | 5-fold val RMSE | 5-fold test RMSE | random val | "
        "random test | seconds |"
    )
    print("|---|---|---|---|---|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
