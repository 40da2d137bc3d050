"""Feeding ratings to Lightning fast: whole batches sliced from pre-shuffled tensors.

A ``DataLoader`` over a ``TensorDataset`` builds every batch from 4,096 single-sample
``__getitem__`` calls and a collate; here an epoch costs one permutation and three gathers,
then each batch is a zero-copy slice, as in a plain PyTorch loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl
import torch
from pytorch_lightning import LightningDataModule

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


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


class ShuffledBatches:
    """An iterable of ``(users, movies, ratings)`` batches, reshuffled on every pass.

    Under data parallelism each process takes an equal, disjoint share of every epoch's
    permutation (the remainder that does not divide evenly is dropped for that epoch), so all
    processes run the same number of steps.
    """

    def __init__(
        self,
        data: RatingTensors,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

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


class RatingsDataModule(LightningDataModule):
    """Train and validation batches for Lightning, sharded by rank, optionally on the device."""

    def __init__(
        self,
        train: RatingTensors,
        val: RatingTensors,
        *,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        data_on_device: bool = True,
    ) -> None:
        super().__init__()
        self.train = train
        self.val = val
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.data_on_device = data_on_device

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """The batch itself when it is already on ``device`` (``data_on_device``): this
        skips Lightning's generic walk over the batch, a cost paid on every step."""
        if isinstance(batch, tuple) and all(
            isinstance(tensor, torch.Tensor) and tensor.device == device
            for tensor in batch
        ):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def _placed(self, data: RatingTensors) -> RatingTensors:
        device = self.trainer.strategy.root_device
        return data.to(device) if self.data_on_device else data

    def train_dataloader(self) -> ShuffledBatches:
        return ShuffledBatches(
            self._placed(self.train),
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )

    def val_dataloader(self) -> ShuffledBatches:
        return ShuffledBatches(
            self._placed(self.val),
            self.eval_batch_size,
            shuffle=False,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )
