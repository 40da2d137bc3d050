"""Training one model variant: early stopping on val, the best epoch kept, an optional
refit on train + val."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any

import polars as pl
import torch
from pytorch_lightning import seed_everything

from rating_prediction.data.ids import seen_mask
from rating_prediction.data.schema import RatingScale
from rating_prediction.models.config import ModelConfig, build_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.parameters import VariantParameters
from rating_prediction.runtime.run_guard import CHECKPOINT_PREFIX
from rating_prediction.training.callbacks import recorded_history
from rating_prediction.training.data import TrainingData
from rating_prediction.training.feeding import RatingsDataModule, RatingTensors
from rating_prediction.training.mlflow_logger import logger_for_active_run
from rating_prediction.training.module import RatingRegressor
from rating_prediction.training.trainer import (
    fit_or_raise,
    make_trainer,
)

logger = logging.getLogger(__name__)


def fit_variant(
    variant: str, options: VariantParameters[Any], data: TrainingData
) -> tuple[dict[str, torch.Tensor], ModelConfig, pl.DataFrame]:
    """Train ``variant`` with early stopping on val loss and keep the best epoch; with
    ``options.refit_on_train_val``, retrain on train + val for that many epochs. The fit
    function of the Lightning variants in the variant registry.

    Args:
        variant: The model variant (a key of ``VARIANTS``).
        options: Its parameters, ``training.<variant>``.
        data: The train and val splits and the id counts.

    Returns:
        The saved weights (a state dict on the CPU), the model config (variant, id counts,
        constructor arguments, best epoch and its val loss) and the per-epoch history.
    """
    check_split(data.train, "train", data.n_users, data.n_movies)
    check_split(data.val, "val", data.n_users, data.n_movies)
    seed_everything(options.seed, verbose=False)
    train = RatingTensors.from_frame(data.train)
    val = RatingTensors.from_frame(data.val)
    model, config = new_model(
        variant, options, train, data.id_counts, data.rating_scale
    )
    started = time.perf_counter()
    history = _fit_keeping_best(variant, options, model, train, val)
    seconds = time.perf_counter() - started
    best = history.row(int(history["val_loss"].arg_min()), named=True)
    started += data.report_fitted_on_train(model)
    if options.refit_on_train_val:
        model, config = _refit_on_train_and_val(
            variant, options, (train, val), data, best["epoch"]
        )
    config = config.model_copy(
        update={
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "refit_on_train_val": options.refit_on_train_val,
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
    )
    _log_fit(variant, history, seconds, len(train), best)
    weights = {name: tensor.cpu() for name, tensor in model.state_dict().items()}
    return weights, config, history


def check_split(ratings: pl.DataFrame, split: str, n_users: int, n_movies: int) -> None:
    """A clear error for an empty split or one whose ids the mappings do not cover."""
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


def new_model(
    variant: str,
    options: VariantParameters[Any],
    data: RatingTensors,
    id_counts: tuple[int, int],
    scale: RatingScale,
) -> tuple[RatingModel, ModelConfig]:
    """A fresh model of ``variant`` for training on ``data`` (its mean rating as
    ``global_mean``, the ids it does not rate zeroed), predicting on ``scale`` (the
    data set's rating scale), and the config that rebuilds it."""
    n_users, n_movies = id_counts
    config = ModelConfig(
        variant=variant,
        n_users=n_users,
        n_movies=n_movies,
        model_kwargs={
            **options.model.model_dump(),
            "rating_min": scale.min,
            "rating_max": scale.max,
            "global_mean": float(data.ratings.double().mean()),
        },
    )
    model = build_model(config)
    model.forget_unseen(
        torch.from_numpy(seen_mask(data.users.numpy(), n_users)),
        torch.from_numpy(seen_mask(data.movies.numpy(), n_movies)),
    )
    return model, config


def lightning_parts(
    variant: str,
    options: VariantParameters[Any],
    model: RatingModel,
    data: tuple[RatingTensors, RatingTensors],
) -> tuple[RatingRegressor, RatingsDataModule]:
    """The LightningModule and DataModule that train ``model`` on ``data`` (train, val)
    with ``options``."""
    train, val = data
    module = RatingRegressor(
        model,
        variant=variant,
        learning_rate=options.optimizer.learning_rate,
        weight_decay=options.optimizer.weight_decay,
    )
    datamodule = RatingsDataModule(
        train,
        val,
        batch_size=options.batch_size,
        eval_batch_size=options.eval_batch_size,
        seed=options.seed,
        data_on_device=options.data_on_device,
        optimizer_steps_per_training_step=options.optimizer_steps_per_training_step,
    )
    return module, datamodule


def _fit_keeping_best(
    variant: str,
    options: VariantParameters[Any],
    model: RatingModel,
    train: RatingTensors,
    val: RatingTensors,
) -> pl.DataFrame:
    """Fit ``model`` with early stopping, leave the best epoch's weights in it and return
    the history; the checkpoint lives in a temporary directory."""
    module, data = lightning_parts(variant, options, model, (train, val))
    with tempfile.TemporaryDirectory(
        prefix=f"{CHECKPOINT_PREFIX}{os.getpid()}-"
    ) as checkpoint_dir:
        trainer = make_trainer(
            options,
            variant=variant,
            checkpoint_dir=checkpoint_dir,
            logger=logger_for_active_run() or False,
        )
        fit_or_raise(trainer, module, data)
        # Read before loading the best checkpoint, whose buffer stops at its epoch.
        history = recorded_history(module)
        best = torch.load(
            trainer.checkpoint_callback.best_model_path,
            map_location="cpu",
            weights_only=True,
        )
    module.load_state_dict(best["state_dict"])
    return history


def _refit_on_train_and_val(
    variant: str,
    options: VariantParameters[Any],
    splits: tuple[RatingTensors, RatingTensors],
    training_data: TrainingData,
    epochs: int,
) -> tuple[RatingModel, ModelConfig]:
    """Retrain from scratch on train + val for the number of epochs chosen on val."""
    train, val = splits
    both = RatingTensors(
        torch.cat([train.users, val.users]),
        torch.cat([train.movies, val.movies]),
        torch.cat([train.ratings, val.ratings]),
    )
    seed_everything(options.seed, verbose=False)
    model, config = new_model(
        variant, options, both, training_data.id_counts, training_data.rating_scale
    )
    module, data = lightning_parts(variant, options, model, (both, val))
    logger.debug("%s: refitting on train + val for %d epochs", variant, epochs)
    trainer = make_trainer(options, variant=variant, fixed_epochs=epochs)
    fit_or_raise(trainer, module, data)
    return model, config


def _log_fit(
    variant: str,
    history: pl.DataFrame,
    seconds: float,
    n_train: int,
    best: dict[str, Any],
) -> None:
    logger.info(
        "%s: %d epochs in %.1f s (%.2f s per epoch, %s training ratings/s including "
        "validation); best val MSE %.4f at epoch %d",
        variant,
        history.height,
        seconds,
        seconds / max(history.height, 1),
        f"{history.height * n_train / seconds:,.0f}",
        best["val_loss"],
        best["epoch"],
    )
