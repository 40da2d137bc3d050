"""The Lightning wrapper that trains any :class:`~rating_prediction.models.factorization.RatingModel`,
and the optimizers it trains with."""

from __future__ import annotations

import math
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.plugins.precision import Precision
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import nn

from rating_prediction.models.factorization import RatingModel
from rating_prediction.training.feeding import Batch, BatchGroup

# Devices where ``Adam(fused=True)`` has a kernel (torch >= 2.4): one kernel per parameter
# instead of a dozen element-wise passes, several times faster on a large dense embedding
# table. Same update rule; elsewhere torch's default implementation is used.
FUSED_ADAM_DEVICES = frozenset({"cpu", "cuda"})


def loss_key(variant: str, split: str) -> str:
    """The metric name of ``variant``'s loss on ``split`` (``train`` or ``val``), e.g.
    ``biased_mf.val_loss``: the key logged, monitored and written to MLflow."""
    return f"{variant}.{split}_loss"


def _is_sparse_embedding(module: nn.Module) -> bool:
    return isinstance(module, nn.Embedding) and module.sparse


def split_parameters(
    model: nn.Module,
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(dense, sparse)``: the parameters of sparse embeddings (sparse gradients) and
    all the others, each in module order."""
    dense: list[nn.Parameter] = []
    sparse: list[nn.Parameter] = []
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if _is_sparse_embedding(module):
            sparse += own
        else:
            dense += own
    return dense, sparse


def make_optimizers(
    model: nn.Module, *, learning_rate: float, weight_decay: float = 0.0
) -> list[torch.optim.Optimizer]:
    """``Adam`` for the dense parameters (fused on CPU and CUDA), ``SparseAdam`` for the
    sparse embeddings, in that order; an optimizer without parameters is left out.

    ``SparseAdam`` has no weight decay: sparse models regularise through their own
    penalty (:meth:`RatingModel.regularization`).
    """
    dense, sparse = split_parameters(model)
    optimizers: list[torch.optim.Optimizer] = []
    if dense:
        # None, not False, elsewhere: torch then picks its default (foreach or not).
        fused = all(p.device.type in FUSED_ADAM_DEVICES for p in dense) or None
        optimizers.append(
            torch.optim.Adam(
                dense, lr=learning_rate, weight_decay=weight_decay, fused=fused
            )
        )
    if sparse:
        optimizers.append(torch.optim.SparseAdam(sparse, lr=learning_rate))
    return optimizers


class RatingRegressor(LightningModule):
    """Minimises mean squared error (plus the model's L2 penalty) with Adam.

    Optimisation is manual: one ``zero_grad``/``backward``/``step`` per batch, without the
    closure machinery of automatic optimisation, so a step costs what a plain PyTorch loop
    costs. Each ``training_step`` receives a group of consecutive batches
    (:class:`~rating_prediction.training.feeding.BatchGroups`) and steps once per batch,
    so Lightning's work around a ``training_step`` (its loop, hooks and progress bar) is
    paid once per group. Each step goes through Lightning's optimizer wrapper, which
    counts the steps. Each backward goes through ``manual_backward``, which applies the
    precision setting, synchronises gradients under DDP and calls the backward hooks,
    except where it would do nothing but call ``loss.backward()`` (one device, 32-bit
    precision, no backward hook defined: :func:`backward_is_plain`); there the loss's
    own ``backward`` saves Lightning's dispatch on every step. The optimizers are
    :func:`make_optimizers`'; Lightning calls ``configure_optimizers`` once the model is
    on its device.

    Per step, the module only accumulates the epoch's train loss on the device, in place
    (assigning a module attribute goes through the slow ``nn.Module.__setattr__``);
    :class:`~rating_prediction.training.callbacks.LossHistory` reads it once per epoch
    (reading a tensor every step would synchronise) and records each epoch's losses in the
    ``history`` buffer. A buffer travels with the state dict, so the history survives
    ``ddp_spawn``'s worker processes. A model without a penalty adds none to the graph.
    """

    def __init__(
        self,
        model: RatingModel,
        *,
        variant: str,
        learning_rate: float,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.variant = variant
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.automatic_optimization = False
        self._regularized = type(model).regularization is not RatingModel.regularization
        # Rows (train loss, val loss) per epoch, NaN until the epoch has run. It starts
        # empty and LossHistory grows it with the epochs run: sized by max_epochs, a
        # bound rather than the work, 1e9 of them would be 8 GB of NaN.
        self.register_buffer("history", torch.full((0, 2), math.nan))
        # Plain tensors, not buffers: DDP broadcasts buffers from rank 0 at every step,
        # which would overwrite the other ranks' sums before they are averaged.
        self._train_loss_sum = torch.zeros((), dtype=torch.float64)
        self._train_count = torch.zeros((), dtype=torch.float64)
        self._plain_backward = False

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        """Takes the saved history's length before loading: it is the epochs its module
        had run (a checkpoint's, or a ``ddp_spawn`` worker's), not this one's."""
        saved = state_dict.get(f"{prefix}history")
        if saved is not None:
            self.history.resize_(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def val_loss_key(self) -> str:
        return loss_key(self.variant, "val")

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        return self.model(users, movies)

    def setup(self, stage: str) -> None:
        _, sparse = split_parameters(self.model)
        if sparse and self.trainer.world_size > 1:
            # Seen here with gloo on CPU: heap corruption in the all-reduce of sparse
            # gradients ("malloc(): unaligned tcache chunk detected"); NCCL has no sparse
            # all-reduce at all.
            raise ValueError(
                f"{self.variant}: sparse embedding gradients are not supported with "
                f"{self.trainer.world_size} data-parallel processes. Set "
                f"training.{self.variant}.model.sparse: false for multi-process training."
            )

    def on_train_start(self) -> None:
        self._plain_backward = backward_is_plain(self.trainer, self)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return make_optimizers(
            self.model,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
        )

    def training_step(self, group: BatchGroup, group_idx: int) -> None:
        """One optimizer step per batch of ``group``, in order: the same updates as one
        ``training_step`` per batch, with Lightning's work around a step paid once."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for batch in group:
            self._optimizer_step(optimizers, batch)
        # Counted once per group: a whole number, so the sum is exact in any order.
        self._train_count.add_(sum(len(ratings) for _, _, ratings in group))

    def _optimizer_step(
        self, optimizers: list[LightningOptimizer], batch: Batch
    ) -> None:
        users, movies, ratings = batch
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        if self._regularized:
            predictions, penalty = self.model.forward_and_penalty(users, movies)
            squared_error = nn.functional.mse_loss(predictions, ratings)
            loss = squared_error + penalty
        else:
            squared_error = nn.functional.mse_loss(self.model(users, movies), ratings)
            loss = squared_error
        if self._plain_backward:
            loss.backward()
        else:
            self.manual_backward(loss)
        for optimizer in optimizers:
            optimizer.step()
        self._train_loss_sum.add_(squared_error.detach(), alpha=ratings.shape[0])

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

    def epoch_train_loss(self) -> torch.Tensor:
        """This process's mean squared error over the epoch's training batches so far
        (a tensor on the device; reading it synchronises)."""
        return self._train_loss_sum / self._train_count.clamp(min=1)


BACKWARD_HOOKS = ("on_before_backward", "on_after_backward")


def backward_is_plain(trainer: Trainer, module: LightningModule) -> bool:
    """Whether Lightning's ``manual_backward`` would only call ``loss.backward()``:
    a single device with 32-bit precision (no loss scaling, no gradient
    synchronisation), and neither ``module`` nor a callback defining a backward hook
    or ``module`` its own ``backward``."""
    return (
        type(trainer.strategy) is SingleDeviceStrategy
        and type(trainer.precision_plugin) is Precision
        and not any(
            is_overridden(hook, module, LightningModule)
            for hook in ("backward", *BACKWARD_HOOKS)
        )
        and not any(
            is_overridden(hook, callback, Callback)
            for callback in trainer.callbacks
            for hook in BACKWARD_HOOKS
        )
    )
