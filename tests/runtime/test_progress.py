"""Progress of long steps (runtime/progress.py): nothing for a quick step, a line every
interval with the time left without a terminal, tqdm's bar on one; and each long step
that reports through it. A fake clock stands in for the time: no test sleeps for it."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import threading
import time

import numpy as np
import polars as pl
import pytest

from rating_prediction.evaluation.cross_validation import fold_labels
from rating_prediction.movielens import download_release
from rating_prediction.movielens.parsers import common, csv_files, dat_files, ml_100k
from rating_prediction.movielens.releases import ReleaseSource
from rating_prediction.parameters import (
    CrossValidationParameters,
    SplitParameters,
    TuningParameters,
    parse,
)
from rating_prediction.pipelines.inference.nodes import recommend_for_all_users
from rating_prediction.runtime import progress
from rating_prediction.runtime.progress import Progress, key_values, waiting
from rating_prediction.training.bayesian_fm import (
    BayesianFMSettings,
    RelationBlocks,
    fit,
)
from rating_prediction.training.tuning import Objective, run_study
from tests.fakes import learnable_splits
from tests.movielens.fixtures import movies_file, ratings_file, write_zip
from tests.serving.fixtures import answered, inference_parameters

WHAT = "bayesian_fm sampling"


class FakeClock:
    """A clock at ``now`` that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.now += self.step
            return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch) -> None:
    """stderr is not a terminal, whatever runs the tests."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())


def lines(caplog, name: str = "") -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(name) and r.levelno == logging.INFO
    ]


def test_a_quick_step_logs_nothing(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO)
    with Progress(WHAT, 400, "samples", clock=clock) as step:
        for _ in range(400):
            clock.now += 0.02  # 8 s in all: under the interval
            step.advance()
    assert lines(caplog) == []


def test_a_line_every_interval_with_the_time_left_then_the_total(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO)
    with Progress(WHAT, 400, "samples", clock=clock) as step:
        for _ in range(400):
            clock.now += 0.25  # 100 s in all; a line each 40 samples
            step.advance()
    printed = lines(caplog)
    assert printed[0] == (
        f"{WHAT}: 40/400 samples (10%), 10 s so far, about 1 min 30 s left"
    )
    assert printed[1] == (
        f"{WHAT}: 80/400 samples (20%), 20 s so far, about 1 min 20 s left"
    )
    assert (
        printed[8]
        == f"{WHAT}: 360/400 samples (90%), 1 min 30 s so far, about 10 s left"
    )
    # No line at 400/400: the closing one says it.
    assert printed[9:] == [f"{WHAT}: done, 400/400 samples in 1 min 40 s"]


def test_lines_come_at_most_once_an_interval_and_not_before_it(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO)
    step = Progress("tuning", 10, "trials", clock=clock, interval=30)
    for seconds in (5, 29, 31, 50, 62):
        clock.now = 1000.0 + seconds
        step.advance()
    # At 31 s (the first past 30 s), then 62 s (30 s after it); 50 s is too soon.
    assert lines(caplog) == [
        "tuning: 3/10 trials (30%), 31 s so far, about 1 min 12 s left",
        "tuning: 5/10 trials (50%), 1 min 02 s so far, about 1 min 02 s left",
    ]


def test_a_step_stopped_by_an_error_has_no_closing_line(caplog):
    clock = FakeClock(step=20)
    caplog.set_level(logging.INFO)
    with pytest.raises(RuntimeError):
        with Progress("tuning", 10, "trials", clock=clock) as step:
            step.advance()
            raise RuntimeError
    assert [line.split(",")[0] for line in lines(caplog)] == [
        "tuning: 1/10 trials (10%)"
    ]


def test_bytes_are_shown_in_mb_and_an_unknown_total_has_no_estimate(caplog):
    caplog.set_level(logging.INFO)
    known = Progress("downloading x.zip", 250_000_000, "B", clock=FakeClock(step=20))
    known.advance(100_000_000)
    unknown = Progress("downloading y.zip", None, "B", clock=FakeClock(step=20))
    unknown.advance(12_000_000)
    assert lines(caplog) == [
        "downloading x.zip: 100.0/250.0 MB (40%), 20 s so far, about 30 s left",
        "downloading y.zip: 12.0 MB, 20 s so far",
    ]


def test_track_counts_an_item_once_the_next_is_asked_for(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO)
    for _ in Progress("cross validation", 4, "folds", clock=clock).track(range(4)):
        clock.now += 60  # the caller's work on the item
    assert lines(caplog) == [
        "cross validation: 1/4 folds (25%), 1 min 00 s so far, about 3 min 00 s left",
        "cross validation: 2/4 folds (50%), 2 min 00 s so far, about 2 min 00 s left",
        "cross validation: 3/4 folds (75%), 3 min 00 s so far, about 1 min 00 s left",
        "cross validation: done, 4/4 folds in 4 min 00 s",
    ]


def test_a_terminal_gets_tqdms_bar_and_no_line(monkeypatch, caplog):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    caplog.set_level(logging.INFO)
    with Progress(WHAT, 400, "samples", clock=FakeClock(step=20)) as step:
        assert type(step._bar).__module__.startswith("tqdm")
        step.advance(120)
        step._bar.refresh()
        drawn = terminal.getvalue()
    assert f"{WHAT}:" in drawn and "120/400" in drawn and "samples/s" in drawn
    assert lines(caplog) == []


def test_waiting_reports_a_long_call_and_nothing_for_a_quick_one(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    with waiting("reading ratings.dat (250.0 MB)", interval=10):
        pass  # quick, on the real clock
    assert lines(caplog) == []
    monkeypatch.setattr(progress, "REDRAW_S", 0.001)
    with waiting("reading ratings.dat (250.0 MB)", clock=FakeClock(step=6)) as call:
        _until(lambda: call.lines >= 2)
    printed = lines(caplog)
    assert printed[0].startswith("reading ratings.dat (250.0 MB): ")
    assert printed[0].endswith(" s so far") and "left" not in printed[0]
    assert printed[-1].startswith("reading ratings.dat (250.0 MB): done in ")


def _until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


# The long steps, each with a clock that moves 100 s every time it is read: every
# advance logs a line.
@pytest.fixture
def slow_clock(monkeypatch, caplog) -> None:
    monkeypatch.setattr(progress, "CLOCK", FakeClock(step=100))
    caplog.set_level(logging.INFO)


def test_bayesian_fm_reports_its_samples(slow_clock, caplog):
    splits = learnable_splits(n_users=60, n_movies=20, n_ratings=600)
    train = splits["train_ratings"]
    blocks = RelationBlocks.from_ratings(
        train, (splits["user_mapping"].height, splits["movie_mapping"].height)
    )
    settings = BayesianFMSettings(rank=2, n_iter=5, n_kept_samples=3)
    seen = []
    fit(settings, train, blocks, callback=lambda i, sample: seen.append(i))
    assert seen == [0, 1, 2, 3, 4]  # the history's callback still runs
    printed = lines(caplog, "rating_prediction.training.bayesian_fm")
    assert printed[0] == (
        f"bayesian_fm sampling on {train.height:,} ratings: 1/5 samples (20%), "
        "1 min 40 s so far, about 6 min 40 s left"
    )
    assert len(printed) == 5 and printed[-1].startswith(
        f"bayesian_fm sampling on {train.height:,} ratings: done, 5/5 samples in "
    )


def test_cross_validation_reports_its_folds(slow_clock, caplog):
    ratings = learnable_splits(n_users=30, n_movies=10, n_ratings=200)["train_ratings"]
    ratings = ratings.sort("userIdMapped", "movieIdMapped")
    options = CrossValidationParameters(scheme="kfold", k=3)
    split = SplitParameters(strategy="random", fractions=[0.7, 0.2, 0.1], seed=0)
    empty = pl.DataFrame()
    folds = [f for f, *_ in fold_labels(ratings, options, split, (empty, ()))]
    assert folds == ["fold1", "fold2", "fold3"]
    printed = lines(caplog, "rating_prediction.evaluation")
    assert [line.split(",")[0] for line in printed] == [
        "cross validation: 1/3 folds (33%)",
        "cross validation: 2/3 folds (67%)",
        "cross validation: done",
    ]


def test_tuning_reports_its_trials(slow_clock, caplog, tmp_path):
    settings = parse(
        TuningParameters,
        {
            "variant": "bayesian_fm",
            "n_trials": 3,
            "study_name": "progress",
            "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
            "search_spaces": {
                "bayesian_fm": {"rank": {"type": "int", "low": 2, "high": 8}}
            },
        },
        "tuning",
    )
    objective = Objective("x", "minimize", lambda name, options, data: options["rank"])
    run_study(settings, {"rank": 4}, None, objective)
    printed = lines(caplog, "rating_prediction.training.tuning")
    trials = [line for line in printed if line.startswith("trial ")]
    assert [line.split(",")[0] for line in printed[1:] if line not in trials] == [
        "tuning bayesian_fm: 1/3 trials (33%)",
        "tuning bayesian_fm: 2/3 trials (67%)",
        "tuning bayesian_fm: done",
    ]
    # One line per trial, before its progress line: its figure, the best so far, the
    # values tried (the objective is the rank itself).
    assert len(trials) == 3
    best = None
    for number, line in enumerate(trials):
        found = re.fullmatch(
            rf"trial {number}: x (\d) \(best (\d), trial \d\) with rank=(\d)", line
        )
        assert found, line
        value, best_so_far, rank = map(int, found.groups())
        best = value if best is None else min(best, value)
        assert value == rank and best_so_far == best
    assert printed.index(trials[0]) < printed.index(
        next(line for line in printed if "1/3 trials" in line)
    )


RELEASE = "ml-latest-small"


@pytest.fixture
def published(grouplens_server, tmp_path):
    files = {
        "ratings.csv": ratings_file("ratings.csv"),
        "movies.csv": movies_file("movies.csv"),
        "README.txt": np.random.default_rng(0).bytes(3 << 20),
    }
    archive = write_zip(tmp_path / "source" / f"{RELEASE}.zip", RELEASE, files)
    grouplens_server.publish(RELEASE, archive.read_bytes())
    return grouplens_server, archive.stat().st_size


def test_a_download_reports_the_mb_received(slow_clock, caplog, tmp_path, published):
    server, size = published
    download_release(RELEASE, tmp_path / "raw", server.base_url)
    printed = lines(caplog, "rating_prediction.movielens.download")
    what = re.escape(f"downloading {RELEASE}.zip")
    total = re.escape(f"{size / 1e6:.1f}")
    progress_line = rf"{what}: \d\.\d/{total} MB \(\d+%\), .* so far, about .* left"
    assert re.fullmatch(progress_line, printed[1])  # after "Downloading ..."
    assert re.fullmatch(rf"{what}: done, {total}/{total} MB in .*", printed[-2])


def test_a_large_zip_member_reports_the_mb_extracted(
    slow_clock, caplog, tmp_path, monkeypatch
):
    content = np.random.default_rng(0).bytes(3_000_000)
    path = write_zip(tmp_path / f"{RELEASE}.zip", RELEASE, {"ratings.csv": content})
    monkeypatch.setattr(common, "EXTRACT_CHUNK_BYTES", 1_000_000)
    source = ReleaseSource(RELEASE, path)
    assert common.release_file(source, "ratings.csv") == content
    printed = lines(caplog, "rating_prediction.movielens.parsers")
    what = f"extracting {RELEASE}/ratings.csv from {RELEASE}.zip"
    assert [line.split(",")[0] for line in printed] == [
        f"{what}: 1.0/3.0 MB (33%)",
        f"{what}: 2.0/3.0 MB (67%)",
        f"{what}: done",
    ]


def test_a_single_polars_read_reports_the_file_size_and_time(
    slow_clock, caplog, tmp_path, monkeypatch
):
    path = tmp_path / "u.data"
    path.write_bytes(ratings_file("u.data") * 1000)
    monkeypatch.setattr(progress, "REDRAW_S", 0.001)
    with common.reading(path, "u.data") as call:
        _until(lambda: call.lines >= 1)  # a read that takes a while
    printed = lines(caplog, "rating_prediction.movielens.parsers")
    size = f"{path.stat().st_size / 1e6:.1f} MB"
    assert printed[0].startswith(f"reading u.data ({size}): ")
    assert printed[0].endswith(" s so far")
    assert printed[-1].startswith(f"reading u.data ({size}): done in ")


@pytest.mark.parametrize(
    ("module", "parser", "file_format"),
    [
        (ml_100k, ml_100k.parse_u_data, "u.data"),
        (dat_files, dat_files.parse_ratings_dat, "ratings.dat"),
        (csv_files, csv_files.parse_ratings_csv, "ratings.csv"),
    ],
)
def test_the_ratings_parsers_read_through_it(module, parser, file_format, monkeypatch):
    read = []

    def reading(content, file_name):
        read.append(file_name)
        return contextlib.nullcontext()

    monkeypatch.setattr(module, "reading", reading)
    assert parser(ratings_file(file_format), file_format).height > 0
    assert read == [file_format]


def test_recommendations_for_every_user_report_the_users_done(
    slow_clock, caplog, blend_served, train
):
    inference = inference_parameters(
        batch_recommend={"top_k": 2, "block_size": 4},
        request_files={"batch_size": 4},
    )
    partitions = recommend_for_all_users(blend_served, train, None, inference)
    answered(partitions)
    printed = lines(caplog, "rating_prediction.pipelines.inference")
    users = len(blend_served.users.known_ids)
    assert re.fullmatch(rf"recommending: 4/{users} users \(\d+%\), .* left", printed[0])
    assert re.fullmatch(
        rf"recommending: done, {users}/{users} users in .*", printed[-1]
    )


def test_key_values_lists_settings_with_short_floats():
    values = {"rank": 50, "reg_param": 0.123456, "alpha": 2.0, "best": None}
    assert key_values(values) == "rank=50, reg_param=0.1235, alpha=2, best=None"
