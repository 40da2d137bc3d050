"""A peer benchmark on the project's split files: ``--task rating`` (the default) scores
the project's models against scikit-surprise and myFM by test RMSE, each peer fitted on
the same data as the project's final models; ``--task ranking`` scores ranking peers
(popularity, EASE^R in numpy, implicit's ALS and BPR, LensKit's ItemKNN and ImplicitMF)
by NDCG@10 under the project's ranking protocol.

Run by hand from the project root, after ``kedro run`` (which writes the split files, the
trained models and ``metrics.json``), with the ``bench`` extra installed
(``pip install -e ".[bench]"``, which brings scikit-surprise; myFM is a main dependency)::

    python benchmarks/compare_peers.py
    python benchmarks/compare_peers.py --skip-svdpp          # SVD++ is slow on big data
    python benchmarks/compare_peers.py --fit-data train      # peers on train only
    python benchmarks/compare_peers.py --data-dir data/05_model_input --seed 0

Fit data: the project's final models refit on train + val when their ``config.json`` says
``refit_on_train_val``; with ``--fit-data auto`` (the default) the peers are fitted on
train + val when any project model was, on train only otherwise, so no row wins by seeing
more data. Every row names the data it was fitted on.

Peers: Surprise's ``BaselineOnly``, ``SVD`` and ``SVDpp`` (default hyperparameters, a
fixed ``random_state``; Surprise's own fallback for unknown ids) and myFM's Gibbs-sampled
Bayesian MF (user and movie one-hots) and Bayesian FM with SVD++-style implicit and
"flipped" features through relation blocks (rank 10, 150 samples, as Rendle et al. 2019),
the blocks built from the fit data only. All are scored on ``test_ratings.parquet``.
The project's test scores come from ``data/08_reporting/metrics.json`` (models and
baselines, measured on the same split files) and the models' fit times from
``fit_seconds`` in ``data/06_models/<variant>/config.json`` (``n/a`` for the baselines,
fitted inside the evaluation pipeline). It prints one markdown table, best RMSE first.

Ranking (``--task ranking``) reads only the split files::

    python benchmarks/compare_peers.py --task ranking
    python benchmarks/compare_peers.py --task ranking --data-dir data/05_model_input

Every ranking peer follows one protocol, and is scored by the project's own metric code
(:mod:`rating_prediction.evaluation.ranking`), so peers and the project's entries are
measured alike:

- **tuning on val**: each setting of the peer's small grid is fitted on train;
  candidates are the movies seen in train minus the user's train movies, relevant the
  user's val ratings of at least the relevance threshold (3.875: 4 stars and up on
  0.5..5), ranked users those with a relevant val rating. The setting with the best val
  NDCG@10 is chosen (the first of the grid on a tie). Test is not read.
- **scoring on test**: the chosen setting is refitted on train + val (the users' known
  history); candidates are the movies seen in train (the project's catalogue) minus the
  user's train + val movies, relevant the test ratings of at least the threshold. The
  fit time is the refit's.

The peers learn from binary feedback (which movies a user rated), each as its
documentation shows: the most-rated list of the history; EASE^R in closed form with
numpy (a cross-check of the project's ``ease``); implicit's ``AlternatingLeastSquares``
and ``BayesianPersonalizedRanking`` on a users x items CSR matrix, through their
``recommend`` top-10 lists; LensKit's ``ItemKNNScorer`` and ``ImplicitMFScorer`` in its
``topn_pipeline``, through ``recommend``. implicit and LensKit are optional: a missing
package skips its peers with a message. It prints the peers best test NDCG first, each
with its chosen setting and its test NDCG as a multiple of popularity's, then every
setting's val NDCG.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import polars as pl
from scipy import linalg, sparse

from rating_prediction.evaluation.ranking import (
    RankingTask,
    ranking_metrics,
    ranking_task,
)
from rating_prediction.models.scoring import Scorer
from rating_prediction.training import bayesian_fm

try:  # the project's optional `bench` extra
    import surprise
except ImportError:
    surprise = None

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")
COLUMNS = ["userId", "movieId", "rating", "userIdMapped", "movieIdMapped"]
RATING_SCALE = (0.5, 5.0)
RUN_KEDRO = "Run `kedro run` first (from the project root) to produce it."
TRAIN, TRAIN_VAL = "train", "train + val"
# Entries of metrics.json fitted on train + val although their config does not say so.
TRAIN_VAL_ENTRIES = ("mean_baseline_train_val", "bias_baseline_train_val")
# myFM as in Rendle et al. 2019 and the figures: rank 10, 150 samples.
MYFM_RANK, MYFM_SAMPLES = 10, 150
# The ranking protocol's cut-off and relevance: 4 stars and up, i.e. 0.75 of the way up
# MovieLens's 0.5..5 (the project's evaluation.ranking.relevance_fraction).
RANKING_K, RELEVANCE_THRESHOLD = 10, 3.875
# (user, movie) scores per block of ranked users: 32 MB of float64.
RANKING_MAX_PAIRS = 2**22
POPULARITY = "popularity"
# implicit on one thread: BPR's parallel SGD gives different figures from run to run on
# more, and on 2 shared cores one thread fitted faster.
IMPLICIT_THREADS = 1


class Row(NamedTuple):
    method: str
    fit_data: str
    rmse: float
    seconds: float | None


class MissingInput(SystemExit):
    """A missing input file, reported as a clear message and exit status 1."""

    def __init__(self, what: str, path: Path) -> None:
        super().__init__(f"error: {what} not found: {path}. {RUN_KEDRO}")


def read_split(data_dir: Path, split: str) -> pl.DataFrame:
    path = data_dir / f"{split}_ratings.parquet"
    if not path.is_file():
        raise MissingInput(f"the {split} split", path)
    return pl.read_parquet(path, columns=COLUMNS)


def read_metrics(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingInput("the project's metrics", path)
    return json.loads(path.read_text())


def model_config(models_dir: Path, variant: str) -> dict[str, Any]:
    """The trained model's ``config.json``, or an empty dict where it is absent."""
    path = models_dir / variant / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def entry_fit_data(entry: str, config: dict[str, Any]) -> str:
    """The data a metrics.json entry was fitted on."""
    if config.get("refit_on_train_val") or entry in TRAIN_VAL_ENTRIES:
        return TRAIN_VAL
    return TRAIN


def peer_fit_data(configs: dict[str, dict[str, Any]], choice: str = "auto") -> str:
    """The data the peers are fitted on: ``choice``, or with ``auto`` the project's
    final models' (train + val when any of them refit on it, else train)."""
    if choice != "auto":
        return {"train": TRAIN, "train+val": TRAIN_VAL}[choice]
    refit = any(config.get("refit_on_train_val") for config in configs.values())
    return TRAIN_VAL if refit else TRAIN


def fit_frame(splits: dict[str, pl.DataFrame], fit_data: str) -> pl.DataFrame:
    """The ratings the peers are fitted on."""
    if fit_data == TRAIN_VAL:
        return pl.concat([splits["train"], splits["val"]])
    return splits["train"]


def surprise_rows(
    fit: pl.DataFrame, test: pl.DataFrame, fit_data: str, options: argparse.Namespace
) -> list[Row]:
    if surprise is None:
        raise SystemExit(
            "error: scikit-surprise is not installed; install the project's bench "
            'extra: pip install -e ".[bench]"'
        )
    # Polars -> pandas only at Surprise's boundary; native ints and floats for its ids.
    frame = fit.select(
        pl.col("userId", "movieId").cast(pl.Int64), pl.col("rating").cast(pl.Float64)
    )
    trainset = surprise.Dataset.load_from_df(
        frame.to_pandas(), surprise.Reader(rating_scale=RATING_SCALE)
    ).build_full_trainset()
    testset = list(
        zip(
            test["userId"].cast(pl.Int64).to_list(),
            test["movieId"].cast(pl.Int64).to_list(),
            test["rating"].cast(pl.Float64).to_list(),
            strict=True,
        )
    )
    algorithms = {
        "surprise BaselineOnly": surprise.BaselineOnly(verbose=False),
        "surprise SVD": surprise.SVD(random_state=options.seed),
    }
    if not options.skip_svdpp:
        algorithms["surprise SVDpp"] = surprise.SVDpp(random_state=options.seed)
    rows = []
    for name, algorithm in algorithms.items():
        started = time.perf_counter()
        algorithm.fit(trainset)
        seconds = time.perf_counter() - started
        rmse = surprise.accuracy.rmse(algorithm.test(testset), verbose=False)
        rows.append(Row(name, fit_data, rmse, seconds))
    return rows


def myfm_rows(
    fit: pl.DataFrame, test: pl.DataFrame, fit_data: str, id_counts: tuple[int, int]
) -> list[Row]:
    """myFM's Bayesian MF and Bayesian FM (implicit + flipped relation blocks), the
    blocks built from ``fit`` only; predictions clipped to the rating scale."""
    settings = bayesian_fm.BayesianFMSettings(
        rank=MYFM_RANK, n_iter=MYFM_SAMPLES, n_kept_samples=MYFM_SAMPLES - 5
    )
    rows = []
    for name, implicit in (
        ("myfm Bayesian MF", False),
        ("myfm Bayesian FM, implicit + flipped", True),
    ):
        started = time.perf_counter()
        blocks = bayesian_fm.RelationBlocks.from_ratings(
            fit, id_counts, implicit=implicit, flipped=implicit
        )
        model = bayesian_fm.fit(settings, fit, blocks)
        seconds = time.perf_counter() - started
        predicted = np.clip(model.predict(None, blocks.for_rows(test)), *RATING_SCALE)
        rmse = float(np.sqrt(np.mean((predicted - test["rating"].to_numpy()) ** 2)))
        rows.append(Row(f"{name} (rank {MYFM_RANK})", fit_data, rmse, seconds))
    return rows


def project_rows(
    metrics: dict[str, Any], configs: dict[str, dict[str, Any]]
) -> list[Row]:
    rows = []
    for entry, by_split in metrics.items():
        test = by_split.get("test", {}) if isinstance(by_split, dict) else {}
        if "rmse" not in test:
            continue
        config = configs.get(entry, {})
        rows.append(
            Row(
                f"project {entry}",
                entry_fit_data(entry, config),
                test["rmse"],
                config.get("fit_seconds"),
            )
        )
    if not rows:
        raise SystemExit(
            "error: the project's metrics hold no test RMSE. Rerun `kedro run`."
        )
    return rows


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| method | fit data | test RMSE | fit time (s) |",
        "|---|---|---:|---:|",
    ]
    for row in rows:
        seconds = row.seconds
        fit = "n/a" if seconds is None or math.isnan(seconds) else f"{seconds:.2f}"
        lines.append(f"| {row.method} | {row.fit_data} | {row.rmse:.4f} | {fit} |")
    return "\n".join(lines)


class RankingStage(NamedTuple):
    """One step of the ranking protocol: the history the peers are fitted on, the
    ranking task they are scored on (candidates from the history, relevance from the
    target split), the id space of both, and the cut-off ``k``."""

    name: str
    history: pl.DataFrame
    task: RankingTask
    n_users: int
    n_movies: int
    k: int


class RankingPeer(NamedTuple):
    """A ranking peer: its grid of settings (tuned on val) and its fit, which returns
    a scorer of the stage's candidates (:func:`ranking_metrics`' ``scorer``)."""

    name: str
    grid: list[dict[str, Any]]
    fit: Callable[[RankingStage, dict[str, Any]], Scorer]


class Trial(NamedTuple):
    settings: dict[str, Any]
    metrics: dict[str, float]


class RankingRow(NamedTuple):
    peer: str
    settings: dict[str, Any]
    val: dict[str, float]
    test: dict[str, float]
    seconds: float


def ranking_stage(
    name: str,
    splits: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
    threshold: float,
    k: int,
) -> RankingStage:
    """``splits``: the history (fitted on, never recommended), the target (relevance)
    and the catalogue (the candidates: train's movies, as the project's evaluation)."""
    history, target, catalogue = splits
    ids = pl.concat(
        [frame.select("userIdMapped", "movieIdMapped") for frame in (history, target)]
    )
    return RankingStage(
        name,
        history,
        ranking_task(history, target, threshold, catalogue=catalogue),
        int(ids["userIdMapped"].max()) + 1,
        int(ids["movieIdMapped"].max()) + 1,
        k,
    )


def tuning_stage(
    splits: dict[str, pl.DataFrame], threshold: float, k: int
) -> RankingStage:
    """Tuning: fitted on train, scored on val. Test is not read."""
    return ranking_stage(
        "val", (splits["train"], splits["val"], splits["train"]), threshold, k
    )


def scoring_stage(
    splits: dict[str, pl.DataFrame], threshold: float, k: int
) -> RankingStage:
    """Scoring: refitted on train + val (the users' known history), scored on test."""
    history = pl.concat([splits["train"], splits["val"]])
    return ranking_stage(
        "test", (history, splits["test"], splits["train"]), threshold, k
    )


def stage_metrics(stage: RankingStage, scorer: Scorer) -> dict[str, float]:
    """The project's ranking metrics of ``scorer`` on ``stage``, as its entries get."""
    return ranking_metrics(stage.task, scorer, stage.k, RANKING_MAX_PAIRS)


def tune(peer: RankingPeer, val: RankingStage) -> list[Trial]:
    """Every setting of the peer's grid fitted on val's history and scored on val."""
    return [
        Trial(settings, stage_metrics(val, peer.fit(val, settings)))
        for settings in peer.grid
    ]


def best_trial(trials: list[Trial], k: int) -> Trial:
    """The trial of the best val NDCG@k; the first of the grid on a tie."""
    return max(trials, key=lambda trial: trial.metrics[f"ndcg@{k}"])


def rank_peer(
    peer: RankingPeer, val: RankingStage, test: RankingStage
) -> tuple[RankingRow, list[Trial]]:
    """The peer tuned on ``val``, its chosen setting refitted on ``test``'s history
    (timed) and scored on ``test``; with every val trial."""
    trials = tune(peer, val)
    chosen = best_trial(trials, val.k)
    started = time.perf_counter()
    scorer = peer.fit(test, chosen.settings)
    seconds = time.perf_counter() - started
    row = RankingRow(
        peer.name, chosen.settings, chosen.metrics, stage_metrics(test, scorer), seconds
    )
    return row, trials


def settings_grid(values: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``values``, the last key varying fastest."""
    return [
        dict(zip(values, combination))
        for combination in itertools.product(*values.values())
    ]


def interactions(stage: RankingStage) -> sparse.csr_matrix:
    """The history as a users x movies CSR matrix of binary feedback (float32 ones)."""
    users = stage.history["userIdMapped"].to_numpy()
    movies = stage.history["movieIdMapped"].to_numpy()
    matrix = sparse.csr_matrix(
        (np.ones(users.size, dtype=np.float32), (users, movies)),
        shape=(stage.n_users, stage.n_movies),
    )
    matrix.data[:] = 1.0  # a pair rated twice is one interaction
    return matrix


def list_scores(candidates: np.ndarray, lists: np.ndarray) -> np.ndarray:
    """A score matrix from top-N lists (one row of movie ids per user, best first, -1
    where a list is short): N down to 1 on each user's listed movies, -inf on every
    other candidate, so the lists rank first in their own order."""
    rows, places = np.nonzero(lists >= 0)
    scores = np.full((lists.shape[0], candidates.size), -np.inf)
    columns = np.searchsorted(candidates, lists[rows, places])
    if not np.array_equal(
        candidates[columns.clip(max=candidates.size - 1)], lists[rows, places]
    ):
        raise ValueError("a peer listed a movie that is not a candidate")
    scores[rows, columns] = lists.shape[1] - places
    return scores


def popularity_fit(stage: RankingStage, settings: dict[str, Any]) -> Scorer:
    """The same list for everyone: the candidates by their ratings in the history
    (equal counts to the lower movie index, as the scoring kernel breaks ties)."""
    counts = np.bincount(
        stage.history["movieIdMapped"].to_numpy(), minlength=stage.n_movies
    )
    row = counts[stage.task.candidates].astype(np.float64)
    return lambda users: np.broadcast_to(row, (users.size, row.size))


def ease_fit(stage: RankingStage, settings: dict[str, Any]) -> Scorer:
    """EASE^R (Steck 2019) over the candidates, written apart from the project's (in
    float64, the inverse through a Cholesky solve where the project's uses torch in
    float32): ``P = (X^T X + lambda I)^-1``, ``B = I - P / diag(P)`` (each column over
    its diagonal entry, so the diagonal is 0), scores ``X_u B``."""
    feedback = interactions(stage)[:, stage.task.candidates]
    gram = (feedback.T @ feedback).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += settings["lambda"]
    factor = linalg.cho_factor(gram, overwrite_a=True)
    weights = linalg.cho_solve(factor, np.eye(len(gram)), overwrite_b=True)
    # I - P / diag(P) in place: -P_ij / P_jj off the diagonal, 1 - 1 on it.
    weights /= -np.diag(weights)
    np.fill_diagonal(weights, 0.0)
    return lambda users: feedback[users] @ weights


def implicit_fit(
    model_class: Callable[..., Any],
    seed: int,
    stage: RankingStage,
    settings: dict[str, Any],
) -> Scorer:
    """An implicit model fitted on the users x items CSR matrix of the history (on the
    CPU, one thread, one BLAS thread as implicit asks), scored through its top-k
    ``recommend`` restricted to the candidates, the user's own movies filtered out."""
    threadpool_limits = importlib.import_module("threadpoolctl").threadpool_limits
    user_items = interactions(stage)
    with threadpool_limits(1, "blas"):
        model = model_class(
            **settings, random_state=seed, use_gpu=False, num_threads=IMPLICIT_THREADS
        )
        model.fit(user_items, show_progress=False)

    def score(users: np.ndarray) -> np.ndarray:
        with threadpool_limits(1, "blas"):
            ids, scores = model.recommend(
                users, user_items[users], N=stage.k, items=stage.task.candidates
            )
        return list_scores(
            stage.task.candidates, np.where(np.isfinite(scores), ids, -1)
        )

    return score


def lenskit_fit(
    scorer_class: Callable[..., Any],
    seed: int,
    stage: RankingStage,
    settings: dict[str, Any],
) -> Scorer:
    """A LensKit scorer in its ``topn_pipeline``, trained on the history's
    interactions (no ratings); its ``recommend`` lists come from its default candidates
    (the history's items the user has not rated), cut to the stage's candidates."""
    lenskit, data, training = (
        importlib.import_module(name)
        for name in ("lenskit", "lenskit.data", "lenskit.training")
    )
    frame = stage.history.select("userIdMapped", "movieIdMapped").to_pandas()
    dataset = data.from_interactions_df(
        frame, user_col="userIdMapped", item_col="movieIdMapped"
    )
    pipeline = lenskit.topn_pipeline(scorer_class(**settings), n=stage.k)
    pipeline.train(dataset, training.TrainingOptions(rng=seed))

    # LensKit recommends any history movie; those outside the candidates (seen only
    # in val) are dropped, so ask for that many more.
    outside = np.setdiff1d(
        stage.history["movieIdMapped"].unique(), stage.task.candidates
    )

    def score(users: np.ndarray) -> np.ndarray:
        lists = np.full((users.size, stage.k), -1, dtype=np.int64)
        for row, user in enumerate(users):
            listed = lenskit.recommend(pipeline, int(user), n=stage.k + outside.size)
            ids = listed.ids()
            ids = ids[np.isin(ids, stage.task.candidates)][: stage.k]
            lists[row, : ids.size] = ids
        return list_scores(stage.task.candidates, lists)

    return score


def optional_module(name: str) -> ModuleType | None:
    """The module ``name``, or None when its package is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def implicit_peers(seed: int) -> list[RankingPeer]:
    """implicit's ALS and BPR, or none when implicit is not installed."""
    als, bpr = optional_module("implicit.als"), optional_module("implicit.bpr")
    if als is None or bpr is None:
        return []
    als_grid = {
        "factors": (32, 64, 128),
        "regularization": (0.01, 0.1),
        "alpha": (1.0, 10.0),
    }
    bpr_grid = {
        "factors": (64, 128),
        "learning_rate": (0.01, 0.05),
        "iterations": (100, 300),
    }
    return [
        RankingPeer(
            "implicit ALS",
            settings_grid(als_grid),
            partial(implicit_fit, als.AlternatingLeastSquares, seed),
        ),
        RankingPeer(
            "implicit BPR",
            settings_grid(bpr_grid),
            partial(implicit_fit, bpr.BayesianPersonalizedRanking, seed),
        ),
    ]


def lenskit_peers(seed: int) -> list[RankingPeer]:
    """LensKit's ItemKNN and ImplicitMF, or none when LensKit is not installed."""
    als, knn = optional_module("lenskit.als"), optional_module("lenskit.knn")
    if als is None or knn is None:
        return []
    knn_grid = {"max_nbrs": (20, 50, 100), "feedback": ("implicit",)}
    mf_grid = {"embedding_size": (32, 64, 128), "weight": (10.0, 40.0)}
    return [
        RankingPeer(
            "lenskit ItemKNN",
            settings_grid(knn_grid),
            partial(lenskit_fit, knn.ItemKNNScorer, seed),
        ),
        RankingPeer(
            "lenskit ImplicitMF",
            settings_grid(mf_grid),
            partial(lenskit_fit, als.ImplicitMFScorer, seed),
        ),
    ]


def ranking_peers(seed: int) -> tuple[list[RankingPeer], list[str]]:
    """Every ranking peer whose package is installed, and a message for each package
    that is not."""
    peers = [
        RankingPeer(POPULARITY, [{}], popularity_fit),
        RankingPeer(
            "EASE^R (numpy)",
            settings_grid({"lambda": (100.0, 200.0, 400.0, 800.0)}),
            ease_fit,
        ),
    ]
    skipped = []
    for package, optional in (("implicit", implicit_peers), ("lenskit", lenskit_peers)):
        found = optional(seed)
        peers += found
        if not found:
            skipped.append(f"{package}: not installed, its peers are skipped")
    return peers, skipped


def describe(settings: dict[str, Any]) -> str:
    return (
        ", ".join(
            f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
            for name, value in settings.items()
        )
        or "–"
    )


def ranking_table(rows: list[RankingRow], k: int) -> str:
    """The peers best test NDCG@k first, with their chosen setting and their test
    NDCG@k as a multiple of popularity's."""
    ndcg, recall = f"ndcg@{k}", f"recall@{k}"
    popularity = next(row for row in rows if row.peer == POPULARITY).test[ndcg]
    lines = [
        f"| peer | chosen settings | val NDCG@{k} | test NDCG@{k} | test recall@{k} "
        "| x popularity | fit time (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda row: -row.test[ndcg]):
        lines.append(
            f"| {row.peer} | {describe(row.settings)} | {row.val[ndcg]:.4f} "
            f"| {row.test[ndcg]:.4f} | {row.test[recall]:.4f} "
            f"| {row.test[ndcg] / popularity:.2f} | {row.seconds:.2f} |"
        )
    return "\n".join(lines)


def trials_table(trials: dict[str, list[Trial]], k: int) -> str:
    """Every setting each peer tried on val."""
    lines = [
        f"| peer | settings | val NDCG@{k} | val recall@{k} |",
        "|---|---|---:|---:|",
    ]
    for peer, peer_trials in trials.items():
        for trial in peer_trials:
            lines.append(
                f"| {peer} | {describe(trial.settings)} | {trial.metrics[f'ndcg@{k}']:.4f} "
                f"| {trial.metrics[f'recall@{k}']:.4f} |"
            )
    return "\n".join(lines)


def compare_rankers(args: argparse.Namespace) -> None:
    """``--task ranking``: every installed ranking peer tuned on val, scored on test."""
    splits = {split: read_split(args.data_dir, split) for split in SPLITS}
    val = tuning_stage(splits, args.relevance_threshold, args.k)
    test = scoring_stage(splits, args.relevance_threshold, args.k)
    peers, skipped = ranking_peers(args.seed)
    for message in skipped:
        print(message)
    rows, trials = [], {}
    for peer in peers:
        row, trials[peer.name] = rank_peer(peer, val, test)
        rows.append(row)
    print(
        f"ranking peers on {args.data_dir}: tuned on train -> val "
        f"({val.task.users.size:,} users), refitted on train + val "
        f"({test.history.height:,} ratings) -> test ({test.task.users.size:,} users); "
        f"relevant = rating >= {args.relevance_threshold:g}, binary feedback"
    )
    print()
    print(ranking_table(rows, args.k))
    print()
    print(trials_table(trials, args.k))


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = PROJECT_ROOT / "data"
    parser.add_argument(
        "--task",
        choices=["rating", "ranking"],
        default="rating",
        help="rating: test RMSE against the project's metrics.json; ranking: NDCG@k of "
        "the ranking peers, tuned on val, refitted on train + val (default: rating)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=data / "05_model_input",
        help="folder of {train,val,test}_ratings.parquet (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        default=data / "08_reporting" / "metrics.json",
        help="the project's metrics.json (default: %(default)s)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=data / "06_models",
        help="the project's trained models, for fit times (default: %(default)s)",
    )
    parser.add_argument(
        "--fit-data",
        choices=["auto", "train", "train+val"],
        default="auto",
        help="what the peers are fitted on; auto: as the project's final models",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the peers' seed: Surprise's random_state; implicit's and LensKit's "
        "(default 0)",
    )
    parser.add_argument(
        "--skip-svdpp",
        action="store_true",
        help="leave out SVD++ (slow: hours on MovieLens 25M)",
    )
    parser.add_argument("--skip-myfm", action="store_true", help="leave out myFM")
    parser.add_argument(
        "--k", type=int, default=RANKING_K, help="ranking: the cut-off (default 10)"
    )
    parser.add_argument(
        "--relevance-threshold",
        type=float,
        default=RELEVANCE_THRESHOLD,
        help="ranking: a rating at least this is relevant (default %(default)s: 4 "
        "stars and up on MovieLens's 0.5..5)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_arguments(argv)
    if args.task == "ranking":
        compare_rankers(args)
        return
    splits = {split: read_split(args.data_dir, split) for split in SPLITS}
    metrics = read_metrics(args.metrics)
    configs = {entry: model_config(args.models_dir, entry) for entry in metrics}
    fit_data = peer_fit_data(configs, args.fit_data)
    fit, test = fit_frame(splits, fit_data), splits["test"]
    every = pl.concat(list(splits.values()))
    id_counts = (
        int(every["userIdMapped"].max()) + 1,
        int(every["movieIdMapped"].max()) + 1,
    )
    rows = project_rows(metrics, configs) + surprise_rows(fit, test, fit_data, args)
    if not args.skip_myfm:
        rows += myfm_rows(fit, test, fit_data, id_counts)
    print(
        f"peers fitted on {fit_data} ({fit.height:,} ratings), scored on "
        f"{test.height:,} test ratings from {args.data_dir}; project scores from "
        f"{args.metrics}"
    )
    print()
    print(markdown_table(sorted(rows, key=lambda row: row.rmse)))


if __name__ == "__main__":
    main()
