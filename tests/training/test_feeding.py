"""Batches from pre-shuffled tensors."""

import polars as pl
import pytest
import torch

from rating_prediction.training.feeding import (
    BatchGroups,
    RatingsDataModule,
    RatingTensors,
    ShuffledBatches,
)


def _data(n: int) -> RatingTensors:
    return RatingTensors(
        users=torch.arange(n), movies=torch.arange(n) * 10, ratings=torch.arange(n) / 2
    )


def _epoch(batches: ShuffledBatches) -> list[torch.Tensor]:
    return list(batches)


def test_from_frame_uses_mapped_ids_and_compact_types():
    frame = pl.DataFrame(
        {"userIdMapped": [3, 1], "movieIdMapped": [0, 2], "rating": [4.5, 1.0]}
    )
    data = RatingTensors.from_frame(frame)
    assert data.users.tolist() == [3, 1]
    assert data.movies.dtype == torch.int64
    assert data.ratings.dtype == torch.float32


def test_an_epoch_visits_every_rating_once_with_rows_kept_together():
    batches = ShuffledBatches(_data(10), 4, shuffle=True, seed=1)
    epoch = _epoch(batches)
    assert [len(users) for users, _, _ in epoch] == [4, 4, 2]
    assert len(batches) == 3
    users = torch.cat([users for users, _, _ in epoch])
    assert sorted(users.tolist()) == list(range(10))
    for users, movies, ratings in epoch:
        assert torch.equal(movies, users * 10)
        assert torch.equal(ratings, users / 2)


def test_each_epoch_is_reshuffled_and_runs_repeat_for_a_seed():
    first = ShuffledBatches(_data(100), 100, shuffle=True, seed=7)
    second = ShuffledBatches(_data(100), 100, shuffle=True, seed=7)
    epoch_one, epoch_two = _epoch(first)[0][0], _epoch(first)[0][0]
    assert not torch.equal(epoch_one, epoch_two)
    assert torch.equal(_epoch(second)[0][0], epoch_one)
    assert torch.equal(_epoch(second)[0][0], epoch_two)


def test_unshuffled_batches_keep_the_order():
    users = torch.cat([u for u, _, _ in ShuffledBatches(_data(5), 2, shuffle=False)])
    assert users.tolist() == [0, 1, 2, 3, 4]


def test_ranks_take_disjoint_equal_shares():
    shares = [
        torch.cat(
            [
                u
                for u, _, _ in ShuffledBatches(
                    _data(11), 3, shuffle=True, rank=r, world_size=2
                )
            ]
        )
        for r in (0, 1)
    ]
    assert len(shares[0]) == len(shares[1]) == 5
    assert not set(shares[0].tolist()) & set(shares[1].tolist())


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch_size"):
        ShuffledBatches(_data(3), 0, shuffle=False)


def test_groups_hold_consecutive_batches_in_order_the_last_one_partial():
    single = _epoch(ShuffledBatches(_data(23), 3, shuffle=True, seed=5))
    groups = BatchGroups(ShuffledBatches(_data(23), 3, shuffle=True, seed=5), 3)
    epoch = list(groups)
    assert [len(group) for group in epoch] == [3, 3, 2]
    assert len(groups) == 3
    flattened = [batch for group in epoch for batch in group]
    assert len(flattened) == len(single)
    for grouped, alone in zip(flattened, single, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(grouped, alone, strict=True))


def test_groups_never_span_epochs_and_follow_each_reshuffle():
    batches = ShuffledBatches(_data(10), 4, shuffle=True, seed=3)
    reference = ShuffledBatches(_data(10), 4, shuffle=True, seed=3)
    groups = BatchGroups(batches, 2)
    for _ in range(2):
        epoch = list(groups)
        assert [len(group) for group in epoch] == [2, 1]
        users = [users for group in epoch for users, _, _ in group]
        expected = [users for users, _, _ in reference]
        assert all(torch.equal(a, b) for a, b in zip(users, expected, strict=True))


def test_group_size_must_be_positive():
    with pytest.raises(ValueError, match="group_size"):
        BatchGroups(ShuffledBatches(_data(3), 1, shuffle=False), 0)


def test_a_group_already_on_the_device_is_passed_through_else_moved():
    data = RatingsDataModule(
        _data(4), _data(2), batch_size=2, eval_batch_size=2, seed=0
    )
    group = list(ShuffledBatches(_data(4), 2, shuffle=False))
    assert data.transfer_batch_to_device(group, torch.device("cpu"), 0) is group
    moved = data.transfer_batch_to_device(group, torch.device("meta"), 0)
    assert [len(batch) for batch in moved] == [3, 3]
    assert all(tensor.device.type == "meta" for batch in moved for tensor in batch)
