"""Feeding ratings to Lightning fast: whole batches sliced from pre-shuffled tensors.

A ``DataLoader`` over a ``TensorDataset`` builds every batch from 4,096 single-sample
``__getitem__`` calls and a collate; here an epoch costs one permutation and three gathers,
then each batch is a zero-copy slice, as in a plain PyTorch loop. Lightning receives the
training batches in groups of consecutive batches (:class:`BatchGroups`), one group per
``training_step``, so that its per-step hooks are paid once per group.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import polars as pl
import torch
from pytorch_lightning import LightningDataModule

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
BatchGroup = list[Batch]


@dataclass(frozen=True)
class RatingTensors:
    """Mapped user ids, movie ids (int64) and ratings (float32) of one split."""

    users: torch.Tensor
    movies: torch.Tensor
    ratings: torch.Tensor

    @classmethod
    def from_frame(cls, ratings: pl.DataFrame) -> RatingTensors:
        return cls(
            users=torch.from_numpy(
                ratings["userIdMapped"].cast(pl.Int64).to_numpy(writable=True)
            ),
            movies=torch.from_numpy(
                ratings["movieIdMapped"].cast(pl.Int64).to_numpy(writable=True)
            ),
            ratings=torch.from_numpy(
                ratings["rating"].cast(pl.Float32).to_numpy(writable=True)
            ),
        )

    def __len__(self) -> int:
        return self.ratings.shape[0]

    def to(self, device: torch.device) -> RatingTensors:
        return RatingTensors(
            self.users.to(device), self.movies.to(device), self.ratings.to(device)
        )


@dataclass(eq=False)
class ShuffledBatches:
    """An iterable of ``(users, movies, ratings)`` batches, reshuffled on every pass.

    Under data parallelism each process takes an equal, disjoint share of every epoch's
    permutation (the remainder that does not divide evenly is dropped for that epoch), so all
    processes run the same number of steps.
    """

    data: RatingTensors
    batch_size: int
    _: KW_ONLY
    shuffle: bool
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    epoch: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}.")

    def _share_size(self) -> int:
        return (
            len(self.data) // self.world_size if self.world_size > 1 else len(self.data)
        )

    def __len__(self) -> int:
        return math.ceil(self._share_size() / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        data = self.data
        if self.shuffle or self.world_size > 1:
            order = self._epoch_order()
            data = RatingTensors(
                data.users[order], data.movies[order], data.ratings[order]
            )
        self.epoch += 1
        for start in range(0, len(data), self.batch_size):
            end = start + self.batch_size
            yield data.users[start:end], data.movies[start:end], data.ratings[start:end]

    def _epoch_order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n = len(self.data)
        order = (
            torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        )
        share = self._share_size()
        order = order[self.rank * share : (self.rank + 1) * share]
        return order.to(self.data.ratings.device)


class BatchGroups:
    """The batches of ``batches`` in lists of ``group_size`` consecutive ones, in the same
    order; an epoch's last list holds the remainder. A group never spans two epochs."""

    def __init__(self, batches: ShuffledBatches, group_size: int) -> None:
        if group_size < 1:
            raise ValueError(f"group_size must be positive, got {group_size}.")
        self.batches = batches
        self.group_size = group_size

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.group_size)

    def __iter__(self) -> Iterator[BatchGroup]:
        epoch = iter(self.batches)
        while group := list(itertools.islice(epoch, self.group_size)):
            yield group


def _on_device(batch: Any, device: torch.device) -> bool:
    """Whether ``batch`` is a tuple of tensors or a list of them, all on ``device``."""
    if isinstance(batch, list):
        return all(_on_device(part, device) for part in batch)
    return isinstance(batch, tuple) and all(
        isinstance(tensor, torch.Tensor) and tensor.device == device for tensor in batch
    )


class RatingsDataModule(LightningDataModule):
    """Train and validation batches for Lightning, sharded by rank, optionally on the device.

    Training batches come in groups of ``optimizer_steps_per_training_step`` consecutive
    batches (:class:`BatchGroups`), validation batches one at a time.
    """

    def __init__(
        self,
        train: RatingTensors,
        val: RatingTensors,
        *,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        data_on_device: bool = True,
        optimizer_steps_per_training_step: int = 1,
    ) -> None:
        super().__init__()
        self.train = train
        self.val = val
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.data_on_device = data_on_device
        self.optimizer_steps_per_training_step = optimizer_steps_per_training_step

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """The batch (or group of batches) itself when it is already on ``device``
        (``data_on_device``): this skips Lightning's generic walk over it, a cost paid on
        every step."""
        if _on_device(batch, device):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def _placed(self, data: RatingTensors) -> RatingTensors:
        device = self.trainer.strategy.root_device
        return data.to(device) if self.data_on_device else data

    def train_dataloader(self) -> BatchGroups:
        batches = ShuffledBatches(
            self._placed(self.train),
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )
        return BatchGroups(batches, self.optimizer_steps_per_training_step)

    def val_dataloader(self) -> ShuffledBatches:
        return ShuffledBatches(
            self._placed(self.val),
            self.eval_batch_size,
            shuffle=False,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )
