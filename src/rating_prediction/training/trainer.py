"""The one place a ``pytorch_lightning.Trainer`` is configured: for the fit, the refit on
train + val and the benchmarks."""

from __future__ import annotations

import math
import sys
from typing import Any

from pytorch_lightning import LightningDataModule, LightningModule, Trainer
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import Logger

from rating_prediction.parameters import VariantParameters
from rating_prediction.training.callbacks import LossHistory, PatientEarlyStopping
from rating_prediction.training.module import loss_key

BEST_CHECKPOINT = "best"


class TrainingInterrupted(KeyboardInterrupt):
    """Lightning stopped a fit on Ctrl-C: its model is not a result."""


def fit_or_raise(
    trainer: Trainer, module: LightningModule, data: LightningDataModule
) -> None:
    """``trainer.fit``, except that an interrupted fit raises instead of returning a
    half-trained model (Lightning's graceful shutdown returns or calls ``sys.exit``)."""
    try:
        trainer.fit(module, datamodule=data)
    except SystemExit:
        if not trainer.interrupted:
            raise
    if trainer.interrupted:
        raise TrainingInterrupted(
            "Training was interrupted; no model of this run was saved."
        )


def make_trainer(
    options: VariantParameters[Any],
    *,
    variant: str,
    checkpoint_dir: str | None = None,
    fixed_epochs: int | None = None,
    logger: Logger | bool = False,
    **overrides: Any,
) -> Trainer:
    """A Trainer for ``variant`` with ``options`` (``training.<variant>``).

    The fit (``checkpoint_dir`` given): validation every epoch, the notebook's early
    stopping between ``options.min_epochs`` and ``options.max_epochs`` and the best
    epoch's weights kept in ``checkpoint_dir``. The refit (``fixed_epochs`` given):
    exactly that many epochs, without validation, early stopping or checkpoint. Both
    record the loss history (:class:`LossHistory`), draw the progress bar (refreshed
    about every ``options.progress_bar_refresh_rate`` batches, in whole training steps of
    ``options.optimizer_steps_per_training_step`` batches), place the data themselves (no
    distributed sampler) and pass ``options.trainer`` on; logging goes to ``logger``.
    ``overrides`` are further ``Trainer`` arguments (the benchmarks'
    ``limit_train_batches``, which counts training steps).
    """
    if (checkpoint_dir is None) == (fixed_epochs is None):
        raise ValueError(
            "Give either checkpoint_dir (the fit) or fixed_epochs (a refit)."
        )
    progress_bar = _progress_bar(options)
    if fixed_epochs is None:
        mode = _fit_arguments(options, variant, checkpoint_dir, progress_bar)
    else:
        mode = _refit_arguments(fixed_epochs, progress_bar)
    return Trainer(
        **mode,
        logger=logger,
        # Lightning's step-wise logging would only send what `self.log` marks for the
        # logger, and nothing is: the losses go to it once per epoch, from LossHistory.
        # 0 turns it off (and with it the warning that an epoch has fewer batches
        # than the logging interval).
        log_every_n_steps=0,
        enable_model_summary=False,
        # Progress bars redraw in place on a terminal; elsewhere (CI, a pipe, a log
        # file) each redraw would be a line of its own. The epoch summaries are logged.
        enable_progress_bar=sys.stdout.isatty(),
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        **options.trainer.model_dump(),
        **overrides,
    )


def _progress_bar(options: VariantParameters[Any]) -> TQDMProgressBar:
    """Redrawn about every ``options.progress_bar_refresh_rate`` batches, in whole
    training steps of ``options.optimizer_steps_per_training_step`` batches."""
    return TQDMProgressBar(
        refresh_rate=math.ceil(
            options.progress_bar_refresh_rate
            / options.optimizer_steps_per_training_step
        )
    )


def _shown(progress_bar: Callback) -> list[Callback]:
    """The progress bar where one is shown (a terminal), else none: Lightning refuses
    a progress bar callback with ``enable_progress_bar=False``."""
    return [progress_bar] if sys.stdout.isatty() else []


def _refit_arguments(epochs: int, progress_bar: Callback) -> dict[str, Any]:
    """Exactly ``epochs`` epochs, without validation, early stopping or checkpoint."""
    return {
        "max_epochs": epochs,
        "min_epochs": epochs,
        "limit_val_batches": 0,
        "callbacks": [LossHistory(), *_shown(progress_bar)],
        "enable_checkpointing": False,
    }


def _fit_arguments(
    options: VariantParameters[Any],
    variant: str,
    checkpoint_dir: str,
    progress_bar: Callback,
) -> dict[str, Any]:
    monitor = loss_key(variant, "val")
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename=BEST_CHECKPOINT,
        monitor=monitor,
        mode="min",
        save_top_k=1,
        save_weights_only=True,
    )
    stopping = PatientEarlyStopping(monitor, options.patience, options.min_epochs)
    return {
        "max_epochs": options.max_epochs,
        "min_epochs": options.min_epochs,
        "callbacks": [stopping, LossHistory(), checkpoint, *_shown(progress_bar)],
        "default_root_dir": checkpoint_dir,
    }
