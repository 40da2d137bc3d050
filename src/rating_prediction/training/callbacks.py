"""The training's epoch-end bookkeeping: the notebook's early stopping and the loss history.

Lightning calls the ``on_train_epoch_end`` of plain callbacks (both of these, in the
order given to the Trainer) after the epoch's validation and before ``ModelCheckpoint``
(a monitoring callback), so a NaN loss stops the run before its epoch can be saved.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import torch
from pytorch_lightning import Callback, Trainer

from rating_prediction.training.module import RatingRegressor, loss_key

HISTORY_SCHEMA = pl.Schema(
    {"epoch": pl.Int64(), "train_loss": pl.Float64(), "val_loss": pl.Float64()}
)
# Rows the loss history grows to first; it then doubles. Its size follows the epochs
# run, never ``max_epochs``: that is a bound, and 1e9 of them would be 8 GB of NaN.
HISTORY_FIRST_ROWS = 16


class PatientEarlyStopping(Callback):
    """The notebook's rule: stop once val loss has not improved for ``patience`` epochs,
    but never before ``min_epochs``.

    Lightning's own ``EarlyStopping`` latches its stop signal while ``min_epochs`` is not
    met, so an improvement at epoch 5 would not save the run from stopping at epoch 6;
    here the patience counter alone decides.
    """

    def __init__(self, monitor: str, patience: int, min_epochs: int) -> None:
        self.monitor = monitor
        self.patience = patience
        self.min_epochs = min_epochs
        self.best = float("inf")
        self.epochs_without_improvement = 0

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Any) -> None:
        current = float(trainer.callback_metrics[self.monitor])
        if current < self.best:
            self.best = current
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        epochs_done = trainer.current_epoch + 1
        if (
            self.epochs_without_improvement >= self.patience
            and epochs_done >= self.min_epochs
        ):
            trainer.should_stop = True


def history_with_row(history: torch.Tensor, epoch: int) -> torch.Tensor:
    """``history`` (rows ``(train loss, val loss)``, NaN where no epoch ran) with a row
    for ``epoch`` (0-based): grown when too short, to twice its rows (at least
    ``HISTORY_FIRST_ROWS``), so that its size and the copies follow the epochs run.

    It grows in place (``resize_`` keeps the rows it holds): the module's buffer stays
    the same tensor, so whatever holds it (DDP's buffer list) sees the new rows.
    """
    rows = history.shape[0]
    if epoch < rows:
        return history
    history.resize_(max(epoch + 1, 2 * rows, HISTORY_FIRST_ROWS), 2)
    history[rows:] = math.nan
    return history


class LossHistory(Callback):
    """Per epoch: the train loss (averaged over processes) and the val loss, checked for
    NaN/inf, written into the module's ``history`` buffer (which survives ``ddp_spawn``;
    grown with the epochs run, :func:`history_with_row`), shown on the progress bar and
    logged as ``<variant>.train_loss`` and ``<variant>.val_loss`` with step = epoch
    (1-based) to the Trainer's logger.

    The val loss is NaN in the history when the epoch was not validated (the refit on
    train + val).
    """

    def on_train_epoch_end(self, trainer: Trainer, pl_module: RatingRegressor) -> None:
        epoch = trainer.current_epoch
        train_loss = self._train_loss(trainer, pl_module)
        # No val loss when refitting on train + val for a fixed number of epochs.
        validated = pl_module.val_loss_key in trainer.callback_metrics
        val_loss = (
            float(trainer.callback_metrics[pl_module.val_loss_key])
            if validated
            else math.nan
        )
        if not math.isfinite(train_loss) or (validated and not math.isfinite(val_loss)):
            raise FloatingPointError(
                f"{pl_module.variant}: the loss became NaN or infinite at epoch "
                f"{epoch + 1} (train {train_loss}, val {val_loss}). Lower the learning "
                "rate or raise the regularisation in conf/base/parameters_training.yml."
            )
        history_with_row(pl_module.history, epoch)[epoch] = torch.tensor(
            [train_loss, val_loss]
        )
        self._log(trainer, pl_module, train_loss, val_loss)

    @staticmethod
    def _train_loss(trainer: Trainer, pl_module: RatingRegressor) -> float:
        """The epoch's train loss, averaged over the data-parallel processes."""
        train_loss = pl_module.epoch_train_loss()
        if trainer.world_size > 1:
            train_loss = trainer.strategy.reduce(train_loss, reduce_op="mean")
        return float(train_loss)

    @staticmethod
    def _log(
        trainer: Trainer, pl_module: RatingRegressor, train_loss: float, val_loss: float
    ) -> None:
        train_key = loss_key(pl_module.variant, "train")
        pl_module.log(
            train_key,
            train_loss,
            prog_bar=True,
            logger=False,
            sync_dist=trainer.world_size > 1,
        )
        if trainer.logger is not None:
            trainer.logger.log_metrics(
                {train_key: train_loss, pl_module.val_loss_key: val_loss},
                step=trainer.current_epoch + 1,
            )


def recorded_history(module: RatingRegressor) -> pl.DataFrame:
    """Rows ``(epoch, train_loss, val_loss)`` of the epochs run so far (1-based), as
    :class:`LossHistory` recorded them in ``module.history``."""
    rows = []
    for index, (train_loss, val_loss) in enumerate(module.history.tolist()):
        if math.isnan(train_loss):
            break
        rows.append(
            {"epoch": index + 1, "train_loss": train_loss, "val_loss": val_loss}
        )
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA)
