"""The Lightning wrapper that trains any :class:`~rating_prediction.models.RatingModel`."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from rating_prediction.feeding import Batch
from rating_prediction.models import RatingModel

# Devices where ``Adam(fused=True)`` has a kernel (torch >= 2.4): one kernel per parameter
# instead of a dozen element-wise passes, several times faster on a large dense embedding
# table. Same update rule; elsewhere torch's default implementation is used.
FUSED_ADAM_DEVICES = frozenset({"cpu", "cuda"})


class RatingRegressor(pl.LightningModule):
    """Minimises mean squared error (plus the model's L2 penalty) with Adam.

    Optimisation is manual: one ``zero_grad``/``backward``/``step`` per batch, without the
    closure machinery of automatic optimisation, so a step costs what a plain PyTorch loop
    costs. Sparse embedding gradients go to ``SparseAdam``, dense ones to ``Adam`` (its
    fused kernel on CPU and CUDA). Lightning calls ``configure_optimizers`` once the model
    is on its device.

    Per-epoch losses are accumulated on the device, in place (assigning a module attribute
    goes through the slow ``nn.Module.__setattr__``), and read once per epoch (reading a
    tensor every step would synchronise). They are kept in the ``history`` buffer, which
    travels with the state dict, so the history survives ``ddp_spawn``'s worker processes.
    A model without a penalty adds none to the graph.
    """

    def __init__(
        self,
        model: RatingModel,
        *,
        variant: str,
        learning_rate: float,
        max_epochs: int,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.variant = variant
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.automatic_optimization = False
        self._regularized = type(model).regularization is not RatingModel.regularization
        self.register_buffer("history", torch.full((max_epochs, 2), math.nan))
        # Plain tensors, not buffers: DDP broadcasts buffers from rank 0 at every step,
        # which would overwrite the other ranks' sums before they are averaged.
        self._train_loss_sum = torch.zeros((), dtype=torch.float64)
        self._train_count = torch.zeros((), dtype=torch.float64)

    @property
    def val_loss_key(self) -> str:
        return f"{self.variant}.val_loss"

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        return self.model(users, movies)

    def setup(self, stage: str) -> None:
        sparse = any(
            isinstance(module, nn.Embedding) and module.sparse
            for module in self.model.modules()
        )
        if sparse and self.trainer.world_size > 1:
            # Seen here with gloo on CPU: heap corruption in the all-reduce of sparse
            # gradients ("malloc(): unaligned tcache chunk detected"); NCCL has no sparse
            # all-reduce at all.
            raise ValueError(
                f"{self.variant}: sparse embedding gradients are not supported with "
                f"{self.trainer.world_size} data-parallel processes. Set "
                f"training.{self.variant}.model.sparse: false for multi-process training."
            )

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        sparse, dense = [], []
        for module in self.model.modules():
            own = list(module.parameters(recurse=False))
            if isinstance(module, nn.Embedding) and module.sparse:
                sparse += own
            else:
                dense += own
        optimizers: list[torch.optim.Optimizer] = []
        if dense:
            # None, not False, elsewhere: torch then picks its default (foreach or not).
            fused = all(p.device.type in FUSED_ADAM_DEVICES for p in dense) or None
            optimizers.append(
                torch.optim.Adam(
                    dense,
                    lr=self.learning_rate,
                    weight_decay=self.weight_decay,
                    fused=fused,
                )
            )
        if sparse:
            optimizers.append(torch.optim.SparseAdam(sparse, lr=self.learning_rate))
        return optimizers

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        users, movies, ratings = batch
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        squared_error = nn.functional.mse_loss(self.model(users, movies), ratings)
        loss = squared_error
        if self._regularized:
            loss = loss + self.model.regularization(users, movies)
        self.manual_backward(loss)
        for optimizer in optimizers:
            optimizer.step()
        self._train_loss_sum.add_(squared_error.detach(), alpha=ratings.shape[0])
        self._train_count.add_(ratings.shape[0])

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        users, movies, ratings = batch
        loss = nn.functional.mse_loss(self.model(users, movies), ratings)
        self.log(
            self.val_loss_key,
            loss,
            batch_size=ratings.shape[0],
            on_epoch=True,
            prog_bar=True,
            logger=False,
            sync_dist=self.trainer.world_size > 1,
        )

    def on_train_epoch_start(self) -> None:
        self._train_loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self._train_count = torch.zeros((), dtype=torch.float64, device=self.device)

    def on_train_epoch_end(self) -> None:
        epoch = self.current_epoch
        train_loss = self._train_loss_sum / self._train_count.clamp(min=1)
        if self.trainer.world_size > 1:
            train_loss = self.trainer.strategy.reduce(train_loss, reduce_op="mean")
        train_loss = float(train_loss)
        # No val loss when refitting on train + val for a fixed number of epochs.
        validated = self.val_loss_key in self.trainer.callback_metrics
        val_loss = (
            float(self.trainer.callback_metrics[self.val_loss_key])
            if validated
            else math.nan
        )
        if not math.isfinite(train_loss) or (validated and not math.isfinite(val_loss)):
            raise FloatingPointError(
                f"{self.variant}: the loss became NaN or infinite at epoch {epoch + 1} "
                f"(train {train_loss}, val {val_loss}). Lower the learning rate or raise "
                "the regularisation in conf/base/parameters_training.yml."
            )
        self.history[epoch] = torch.tensor([train_loss, val_loss])
        self.log(
            f"{self.variant}.train_loss",
            train_loss,
            prog_bar=True,
            logger=False,
            sync_dist=self.trainer.world_size > 1,
        )
        if self.logger is not None:
            self.logger.log_metrics(
                {
                    f"{self.variant}.train_loss": train_loss,
                    f"{self.variant}.val_loss": val_loss,
                },
                step=epoch + 1,
            )

    def recorded_history(self) -> list[dict[str, Any]]:
        """Rows ``(epoch, train_loss, val_loss)`` of the epochs run so far (1-based)."""
        rows = []
        for index, (train_loss, val_loss) in enumerate(self.history.tolist()):
            if math.isnan(train_loss):
                break
            rows.append(
                {"epoch": index + 1, "train_loss": train_loss, "val_loss": val_loss}
            )
        return rows
