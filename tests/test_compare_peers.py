"""benchmarks/compare_peers.py: the rating peers see the data the project's final models
saw; the ranking peers are tuned on val only, refitted on train + val, scored on test."""

from __future__ import annotations

import importlib.util

import numpy as np
import polars as pl
import pytest
import torch

from rating_prediction.training import ease
from tests.project import PROJECT_ROOT

spec = importlib.util.spec_from_file_location(
    "compare_peers", PROJECT_ROOT / "benchmarks" / "compare_peers.py"
)
compare_peers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_peers)

REFIT = {"refit_on_train_val": True}
NO_REFIT = {"refit_on_train_val": False}


@pytest.mark.parametrize(
    ("configs", "choice", "expected"),
    [
        ({"biased_mf": REFIT, "inner_sigmoid": NO_REFIT}, "auto", "train + val"),
        ({"biased_mf": NO_REFIT, "inner_sigmoid": NO_REFIT}, "auto", "train"),
        ({"mean_baseline": {}}, "auto", "train"),
        ({"biased_mf": REFIT}, "train", "train"),
        ({"biased_mf": NO_REFIT}, "train+val", "train + val"),
    ],
)
def test_peers_are_fitted_on_the_final_models_data(configs, choice, expected):
    assert compare_peers.peer_fit_data(configs, choice) == expected


def test_fit_frame_and_entry_fit_data_name_the_data():
    splits = {
        name: pl.DataFrame({"rating": [float(i)] * size})
        for i, (name, size) in enumerate((("train", 3), ("val", 2), ("test", 1)))
    }
    assert compare_peers.fit_frame(splits, "train").height == 3
    assert compare_peers.fit_frame(splits, "train + val").height == 5
    assert compare_peers.entry_fit_data("biased_mf", REFIT) == "train + val"
    assert compare_peers.entry_fit_data("inner_sigmoid", NO_REFIT) == "train"
    assert compare_peers.entry_fit_data("bias_baseline", {}) == "train"
    assert compare_peers.entry_fit_data("bias_baseline_train_val", {}) == "train + val"
    rows = compare_peers.project_rows(
        {
            "biased_mf": {"test": {"rmse": 0.9}},
            "bias_baseline": {"test": {"rmse": 1.0}},
        },
        {"biased_mf": REFIT | {"fit_seconds": 2.0}},
    )
    assert rows == [
        compare_peers.Row("project biased_mf", "train + val", 0.9, 2.0),
        compare_peers.Row("project bias_baseline", "train", 1.0, None),
    ]


# The ranking mode (--task ranking): a tiny split written here.

THRESHOLD, K = 3.875, 10


def ratings(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    """A split file's columns, the original ids equal to the mapped ones."""
    frame = pl.DataFrame(
        rows,
        schema={
            "userIdMapped": pl.Int32,
            "movieIdMapped": pl.Int32,
            "rating": pl.Float32,
        },
        orient="row",
    )
    return frame.with_columns(
        pl.col("userIdMapped").alias("userId"), pl.col("movieIdMapped").alias("movieId")
    )


def two_taste_splits(seed: int = 0) -> dict[str, pl.DataFrame]:
    """40 users in two groups, each group rating 8 of its own 15 movies 4.5 stars and
    3 of the other group's 2 stars, the ratings split 60/25/15 at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(40):
        own, other = (0, 15) if user % 2 == 0 else (15, 0)
        rows += [(user, int(m), 4.5) for m in rng.choice(15, 8, replace=False) + own]
        rows += [(user, int(m), 2.0) for m in rng.choice(15, 3, replace=False) + other]
    frame = ratings(rows)
    split = rng.choice(3, size=frame.height, p=[0.6, 0.25, 0.15])
    return {
        name: frame.filter(pl.Series(split == index)).sort(
            "userIdMapped", "movieIdMapped"
        )
        for index, name in enumerate(compare_peers.SPLITS)
    }


def write_splits(folder, splits: dict[str, pl.DataFrame]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        frame.write_parquet(folder / f"{name}_ratings.parquet")
    return folder


def stages(splits):
    return (
        compare_peers.tuning_stage(splits, THRESHOLD, K),
        compare_peers.scoring_stage(splits, THRESHOLD, K),
    )


def peer_named(name: str):
    peers, _ = compare_peers.ranking_peers(seed=0)
    return next(peer for peer in peers if peer.name == name)


def test_the_popularity_peer_is_the_most_rated_history_list_scored_by_hand():
    # Train counts: movie 3 three times, 1 and 4 twice, 0 once; movie 2 is only in val,
    # so it is no candidate.
    train = ratings(
        [(0, 1, 3.0), (0, 3, 1.0), (1, 1, 4.0), (1, 3, 5.0), (1, 4, 2.0)]
        + [(2, 0, 3.0), (2, 3, 2.0), (2, 4, 4.0)]
    )
    # Relevant: user 0's movies 2 and 4 (2 is no candidate), user 2's movie 1; user 1
    # has no relevant val rating, so is not ranked.
    val = ratings([(0, 2, 5.0), (0, 4, 4.0), (1, 0, 3.5), (2, 1, 4.5)])
    test = ratings([(0, 0, 5.0), (1, 2, 4.0)])
    val_stage, test_stage = stages({"train": train, "val": val, "test": test})
    popularity = peer_named(compare_peers.POPULARITY)

    scores = popularity.fit(val_stage, {})(np.array([0, 2]))
    assert val_stage.task.candidates.tolist() == [0, 1, 3, 4]
    # Most rated first, equal counts (1 and 4) to the lower movie id.
    assert [
        val_stage.task.candidates[np.argsort(-row, kind="stable")].tolist()
        for row in scores
    ] == [[3, 1, 4, 0]] * 2

    row, _ = compare_peers.rank_peer(popularity, val_stage, test_stage)
    # User 0's list without its train movies 1 and 3: [4, 0], a hit at rank 1 of 2
    # relevant; user 2's: [1], a hit at rank 1 of 1.
    assert row.val[f"ndcg@{K}"] == pytest.approx((1 / (1 + 1 / np.log2(3)) + 1) / 2)
    assert row.val[f"recall@{K}"] == pytest.approx((1 / 2 + 1) / 2)
    # Test: the history is train + val, the candidates stay train's movies (0, 1, 3,
    # 4), as in the project's evaluation. User 0 (history 1, 2, 3, 4) gets [0], a hit;
    # user 1 (history 0, 1, 3, 4) gets nothing: their relevant movie 2 was seen only in
    # val, so it is no candidate.
    assert test_stage.task.candidates.tolist() == [0, 1, 3, 4]
    assert row.test[f"ndcg@{K}"] == pytest.approx(0.5)


def test_tuning_reads_val_only_and_the_chosen_setting_is_refitted_on_test():
    splits = two_taste_splits()
    seen = []

    def favourite_first(stage, settings):
        seen.append((stage.name, stage.history.height))
        row = (stage.task.candidates == settings["favourite"]).astype(np.float64)
        return lambda users: np.broadcast_to(row, (users.size, row.size))

    peer = compare_peers.RankingPeer(
        "favourite", [{"favourite": movie} for movie in range(30)], favourite_first
    )
    row, trials = compare_peers.rank_peer(peer, *stages(splits))
    chosen = row.settings["favourite"]
    assert len(trials) == 30
    assert row.val == max(
        trial.metrics for trial in trials if trial.settings == row.settings
    )
    # A test split of garbage where another movie is everyone's relevant one: the
    # choice and the val figures stay, only the test figures move.
    decoy = (chosen + 1) % 30
    garbage = ratings([(user, decoy, 5.0) for user in range(40)] + [(41, 7, 0.5)])
    seen.clear()
    garbage_row, _ = compare_peers.rank_peer(peer, *stages(splits | {"test": garbage}))
    assert garbage_row.settings == row.settings
    assert garbage_row.val == row.val
    assert garbage_row.test != row.test
    train_val = splits["train"].height + splits["val"].height
    assert seen == [("val", splits["train"].height)] * 30 + [("test", train_val)]


def test_the_numpy_ease_peer_agrees_with_the_project_ease_weights():
    val_stage, _ = stages(two_taste_splits())
    users = val_stage.task.users
    scores = compare_peers.ease_fit(val_stage, {"lambda": 5.0})(users)
    feedback = compare_peers.interactions(val_stage)[:, val_stage.task.candidates]
    dense = torch.from_numpy(feedback.toarray())
    weights = ease.ease_weights(dense.T @ dense, 5.0)
    expected = (dense[torch.from_numpy(users)] @ weights).numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-4)


def test_top_n_lists_become_scores_in_their_order():
    candidates = np.array([2, 5, 7, 9])
    scores = compare_peers.list_scores(candidates, np.array([[9, 2, -1], [5, 7, 2]]))
    assert scores.tolist() == [
        [2.0, -np.inf, -np.inf, 3.0],
        [1.0, 3.0, 2.0, -np.inf],
    ]
    with pytest.raises(ValueError, match="not a candidate"):
        compare_peers.list_scores(candidates, np.array([[4]]))


def test_implicit_peers_list_k_unrated_candidates():
    pytest.importorskip("implicit")
    val_stage, _ = stages(two_taste_splits())
    users = val_stage.task.users
    for name in ("implicit ALS", "implicit BPR"):
        peer = peer_named(name)
        scores = peer.fit(val_stage, peer.grid[0])(users)
        listed = np.isfinite(scores)
        assert (listed.sum(axis=1) == K).all(), name
        rated = compare_peers.interactions(val_stage)[users][
            :, val_stage.task.candidates
        ]
        assert not (listed & (rated.toarray() > 0)).any(), name


def table_rows(output: str) -> dict[str, list[str]]:
    """The ranking table's rows by peer: chosen settings, val NDCG, test NDCG, ..."""
    table = output.split("\n\n")[1]
    return {
        cells[0]: cells[1:]
        for line in table.splitlines()[2:]
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }


def test_the_ranking_table_has_the_peers_and_ignores_a_garbage_test_split(
    tmp_path, capsys
):
    splits = two_taste_splits()
    rng = np.random.default_rng(1)
    garbage = (
        ratings(
            [(int(u), int(m), 5.0) for u, m in rng.integers(0, [40, 30], size=(60, 2))]
        )
        .unique(["userIdMapped", "movieIdMapped"])
        .sort("userIdMapped", "movieIdMapped")
    )
    outputs = []
    for name, test in (("clean", splits["test"]), ("garbage", garbage)):
        folder = write_splits(tmp_path / name, splits | {"test": test})
        compare_peers.main(["--task", "ranking", "--data-dir", str(folder)])
        outputs.append(capsys.readouterr().out)
    clean, garbled = (table_rows(output) for output in outputs)
    assert {"popularity", "EASE^R (numpy)"} <= clean.keys()
    assert clean["popularity"][:2] == ["–", clean["popularity"][1]]
    assert clean["popularity"][4] == "1.00"
    if compare_peers.optional_module("implicit.als") is not None:
        assert {"implicit ALS", "implicit BPR"} <= clean.keys()
    if compare_peers.optional_module("lenskit.knn") is not None:
        assert {"lenskit ItemKNN", "lenskit ImplicitMF"} <= clean.keys()
    else:
        assert "lenskit: not installed" in outputs[0]
    # Settings and val NDCG are the tuning's: the test split does not move them.
    assert {peer: cells[:2] for peer, cells in clean.items()} == {
        peer: cells[:2] for peer, cells in garbled.items()
    }
    assert clean["EASE^R (numpy)"][2] != garbled["EASE^R (numpy)"][2]


def test_a_missing_peer_package_skips_its_peers_with_a_message(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(compare_peers, "optional_module", lambda name: None)
    folder = write_splits(tmp_path, two_taste_splits())
    compare_peers.main(["--task", "ranking", "--data-dir", str(folder)])
    output = capsys.readouterr().out
    assert "implicit: not installed" in output
    assert "lenskit: not installed" in output
    assert table_rows(output).keys() == {"popularity", "EASE^R (numpy)"}
