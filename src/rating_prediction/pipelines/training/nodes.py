"""Nodes of the training pipeline."""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

import polars as pl
import pytorch_lightning as pl_lightning
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, TQDMProgressBar

from rating_prediction.feeding import RatingsDataModule, RatingTensors
from rating_prediction.lightning_module import RatingRegressor
from rating_prediction.models import RatingModel, check_variant
from rating_prediction.tracking import logger_for_active_run

logger = logging.getLogger(__name__)


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

    def on_train_epoch_end(self, trainer: pl_lightning.Trainer, pl_module: Any) -> None:
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


def _check_split(
    ratings: pl.DataFrame, split: str, n_users: int, n_movies: int
) -> None:
    if ratings.height == 0:
        raise ValueError(
            f"The {split} split is empty: nothing to train on. Check "
            "processing.top_n_movies and processing.split in conf/base."
        )
    for column, bound, mapping in (
        ("userIdMapped", n_users, "user_mapping"),
        ("movieIdMapped", n_movies, "movie_mapping"),
    ):
        low, high = ratings[column].min(), ratings[column].max()
        if low < 0 or high >= bound:
            raise ValueError(
                f"The {split} split has {column} values in [{low}, {high}] but "
                f"{mapping} has {bound} ids (0..{bound - 1}): the split and the mapping "
                "come from different runs. Rerun the data_processing pipeline."
            )


def _seen(ids: torch.Tensor, count: int) -> torch.Tensor:
    seen = torch.zeros(count, dtype=torch.bool)
    seen[ids] = True
    return seen


def build_variant_model(
    options: dict[str, Any], n_users: int, n_movies: int, global_mean: float
) -> tuple[RatingModel, dict[str, Any]]:
    """A fresh model of ``options["variant"]`` and the config that rebuilds it."""
    model_class = check_variant(options["variant"])
    model_kwargs = {**options["model"], "global_mean": global_mean}
    config = {
        "variant": options["variant"],
        "n_users": n_users,
        "n_movies": n_movies,
        "model_kwargs": model_kwargs,
    }
    return model_class(n_users, n_movies, **model_kwargs), config


def build_trainer(
    options: dict[str, Any], monitor: str, checkpoint_dir: str
) -> pl_lightning.Trainer:
    """A Trainer with the notebook's early stopping and the best checkpoint kept, logging
    into the active MLflow run if there is one."""
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best",
        monitor=monitor,
        mode="min",
        save_top_k=1,
        save_weights_only=True,
    )
    callbacks = [
        PatientEarlyStopping(monitor, options["patience"], options["min_epochs"]),
        checkpoint,
        TQDMProgressBar(refresh_rate=options["progress_bar_refresh_rate"]),
    ]
    return pl_lightning.Trainer(
        max_epochs=options["max_epochs"],
        min_epochs=options["min_epochs"],
        callbacks=callbacks,
        logger=logger_for_active_run() or False,
        default_root_dir=checkpoint_dir,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        **options["trainer"],
    )


def build_lightning_parts(
    options: dict[str, Any],
    model: RatingModel,
    train: RatingTensors,
    val: RatingTensors,
    max_epochs: int,
) -> tuple[RatingRegressor, RatingsDataModule]:
    """The LightningModule and DataModule that train ``model`` with ``options``."""
    module = RatingRegressor(
        model,
        variant=options["variant"],
        learning_rate=options["optimizer"]["learning_rate"],
        weight_decay=options["optimizer"]["weight_decay"],
        max_epochs=max_epochs,
    )
    data = RatingsDataModule(
        train,
        val,
        batch_size=options["batch_size"],
        eval_batch_size=options["eval_batch_size"],
        seed=options["seed"],
        data_on_device=options["data_on_device"],
    )
    return module, data


def _refit_on_train_and_val(
    options: dict[str, Any],
    train: RatingTensors,
    val: RatingTensors,
    id_counts: tuple[int, int],
    epochs: int,
) -> tuple[RatingModel, dict[str, Any]]:
    """Retrain from scratch on train + val for the number of epochs chosen on val."""
    n_users, n_movies = id_counts
    both = RatingTensors(
        torch.cat([train.users, val.users]),
        torch.cat([train.movies, val.movies]),
        torch.cat([train.ratings, val.ratings]),
    )
    pl_lightning.seed_everything(options["seed"], verbose=False)
    model, config = build_variant_model(
        options, n_users, n_movies, float(both.ratings.double().mean())
    )
    model.forget_unseen(_seen(both.users, n_users), _seen(both.movies, n_movies))
    module, data = build_lightning_parts(options, model, both, val, epochs)
    logger.info(
        "%s: refitting on train + val for %d epochs", options["variant"], epochs
    )
    pl_lightning.Trainer(
        max_epochs=epochs,
        min_epochs=epochs,
        limit_val_batches=0,
        callbacks=[TQDMProgressBar(refresh_rate=options["progress_bar_refresh_rate"])],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        **options["trainer"],
    ).fit(module, datamodule=data)
    return model, config


def train_model(
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    options: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], pl.DataFrame]:
    """Train one model variant with early stopping on val loss; keep the best epoch.

    Returns the best epoch's weights (a state dict), the model config (variant, id counts,
    constructor arguments, best epoch and val loss) and the per-epoch history.
    """
    n_users, n_movies = user_mapping.height, movie_mapping.height
    _check_split(train_ratings, "train", n_users, n_movies)
    _check_split(val_ratings, "val", n_users, n_movies)
    pl_lightning.seed_everything(options["seed"], verbose=False)

    train = RatingTensors.from_frame(train_ratings)
    val = RatingTensors.from_frame(val_ratings)
    model, config = build_variant_model(
        options, n_users, n_movies, float(train.ratings.double().mean())
    )
    model.forget_unseen(_seen(train.users, n_users), _seen(train.movies, n_movies))
    module, data = build_lightning_parts(
        options, model, train, val, options["max_epochs"]
    )
    with tempfile.TemporaryDirectory(prefix="rating-prediction-") as checkpoint_dir:
        trainer = build_trainer(options, module.val_loss_key, checkpoint_dir)
        started = time.perf_counter()
        trainer.fit(module, datamodule=data)
        seconds = time.perf_counter() - started
        history = pl.DataFrame(
            module.recorded_history(),
            schema={
                "epoch": pl.Int64,
                "train_loss": pl.Float64,
                "val_loss": pl.Float64,
            },
        )
        best = torch.load(
            trainer.checkpoint_callback.best_model_path,
            map_location="cpu",
            weights_only=True,
        )
    module.load_state_dict(best["state_dict"])
    best_row = history.row(int(history["val_loss"].arg_min()), named=True)
    if options["refit_on_train_val"]:
        model, config = _refit_on_train_and_val(
            options, train, val, (n_users, n_movies), best_row["epoch"]
        )
    config |= {
        "best_epoch": best_row["epoch"],
        "best_val_loss": best_row["val_loss"],
        "refit_on_train_val": options["refit_on_train_val"],
        "fit_seconds": round(time.perf_counter() - started, 3),
    }
    logger.info(
        "%s: %d epochs in %.1f s (%.2f s per epoch, %s training ratings/s including "
        "validation); best val MSE %.4f at epoch %d",
        options["variant"],
        history.height,
        seconds,
        seconds / max(history.height, 1),
        f"{history.height * len(train) / seconds:,.0f}",
        best_row["val_loss"],
        best_row["epoch"],
    )
    weights = {name: tensor.cpu() for name, tensor in model.state_dict().items()}
    return weights, config, history
