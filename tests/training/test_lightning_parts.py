"""The training package's Lightning parts: optimizers, the loss history, the Trainer."""

from __future__ import annotations

import io
import math
import sys
import warnings

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import Logger

import rating_prediction.training.fit as fit_module
from rating_prediction.models.factorization import (
    BiasedMatrixFactorization,
    InnerSigmoidModel,
)
from rating_prediction.models.variants import variant as variant_registry
from rating_prediction.parameters import parse
from rating_prediction.training.callbacks import (
    LossHistory,
    PatientEarlyStopping,
    recorded_history,
)
from rating_prediction.training.feeding import RatingTensors
from rating_prediction.training.fit import fit_variant, lightning_parts
from rating_prediction.training.module import RatingRegressor, make_optimizers
from rating_prediction.training.trainer import make_trainer
from tests.fakes import training_data


def _options(training_parameters, variant, **changes):
    return parse(
        variant_registry(variant).parameters,
        training_parameters[variant] | changes,
        f"training.{variant}",
    )


class RecordingLogger(Logger):
    """Keeps what ``log_metrics`` receives."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.logged.append((step, dict(metrics)))


def _fit_parts(splits, options, variant):
    model = InnerSigmoidModel(
        splits["user_mapping"].height, splits["movie_mapping"].height
    )
    data = (
        RatingTensors.from_frame(splits["train_ratings"]),
        RatingTensors.from_frame(splits["val_ratings"]),
    )
    return lightning_parts(variant, options, model, data)


@pytest.mark.parametrize("sparse", [False, True])
def test_optimizers_split_dense_and_sparse_parameters(sparse):
    model = BiasedMatrixFactorization(5, 4, sparse=sparse)
    optimizers = make_optimizers(model, learning_rate=0.01, weight_decay=0.1)
    classes = [type(optimizer) for optimizer in optimizers]
    assert classes == ([torch.optim.SparseAdam] if sparse else [torch.optim.Adam])
    assert optimizers[0].defaults["lr"] == 0.01
    if not sparse:
        assert optimizers[0].defaults["fused"] is True  # on the CPU
        assert optimizers[0].defaults["weight_decay"] == 0.1
    optimized = {
        id(p) for o in optimizers for group in o.param_groups for p in group["params"]
    }
    assert optimized == {id(p) for p in model.parameters()}


def test_dense_parameters_go_to_adam_next_to_sparse_embeddings():
    model = InnerSigmoidModel(5, 4, sparse=True)
    adam, sparse_adam = make_optimizers(model, learning_rate=0.01)
    assert type(adam) is torch.optim.Adam
    assert type(sparse_adam) is torch.optim.SparseAdam
    assert [p for group in adam.param_groups for p in group["params"]] == list(
        model.linear.parameters()
    )


def test_the_module_trains_with_the_shared_optimizers():
    model = InnerSigmoidModel(5, 4, sparse=True)
    module = RatingRegressor(model, variant="inner_sigmoid", learning_rate=0.02)
    built = module.configure_optimizers()
    shared = make_optimizers(model, learning_rate=0.02)
    assert [type(o) for o in built] == [type(o) for o in shared]
    assert [o.param_groups[0]["params"] for o in built] == [
        o.param_groups[0]["params"] for o in shared
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_make_trainer_for_the_fit(training_parameters, tmp_path, monkeypatch, terminal):
    """The progress bar redraws in place on a terminal; elsewhere there is none (each
    redraw would be a line of the log)."""
    monkeypatch.setattr(sys, "stdout", Terminal() if terminal else io.StringIO())
    options = _options(training_parameters, "inner_sigmoid")
    trainer = make_trainer(
        options, variant="inner_sigmoid", checkpoint_dir=str(tmp_path)
    )
    kinds = [type(callback) for callback in trainer.callbacks]
    assert {PatientEarlyStopping, LossHistory} <= set(kinds)
    assert (TQDMProgressBar in kinds) is terminal
    assert kinds.index(PatientEarlyStopping) < kinds.index(LossHistory)
    assert trainer.max_epochs == options.max_epochs
    assert trainer.min_epochs == options.min_epochs
    assert isinstance(trainer.checkpoint_callback, ModelCheckpoint)
    assert trainer.checkpoint_callback.dirpath == str(tmp_path)
    assert trainer.checkpoint_callback.monitor == "inner_sigmoid.val_loss"
    assert trainer.logger is None
    assert trainer.accelerator.__class__.__name__ == "CPUAccelerator"


def test_make_trainer_for_a_refit(training_parameters):
    options = _options(training_parameters, "biased_mf")
    trainer = make_trainer(options, variant="biased_mf", fixed_epochs=3)
    kinds = {type(callback) for callback in trainer.callbacks}
    assert LossHistory in kinds
    assert PatientEarlyStopping not in kinds
    assert trainer.checkpoint_callback is None
    assert trainer.max_epochs == trainer.min_epochs == 3
    assert trainer.limit_val_batches == 0


def test_make_trainer_needs_exactly_one_mode(training_parameters, tmp_path):
    options = _options(training_parameters, "biased_mf")
    with pytest.raises(ValueError, match="either checkpoint_dir"):
        make_trainer(options, variant="biased_mf")
    with pytest.raises(ValueError, match="either checkpoint_dir"):
        make_trainer(
            options, variant="biased_mf", checkpoint_dir=str(tmp_path), fixed_epochs=2
        )


@pytest.mark.parametrize("refit", [False, True])
def test_fit_and_refit_use_make_trainer(
    splits, training_parameters, monkeypatch, refit
):
    calls = []

    def spy(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        calls.append((kwargs, trainer))
        return trainer

    monkeypatch.setattr(fit_module, "make_trainer", spy)
    options = _options(
        training_parameters,
        "biased_mf",
        max_epochs=4,
        min_epochs=1,
        refit_on_train_val=refit,
    )
    _, config, history = fit_variant("biased_mf", options, training_data(splits))
    assert len(calls) == (2 if refit else 1)
    fit_kwargs, fit_trainer = calls[0]
    assert fit_kwargs["checkpoint_dir"] is not None
    assert fit_trainer.current_epoch == history.height
    if refit:
        refit_kwargs, refit_trainer = calls[1]
        assert refit_kwargs["fixed_epochs"] == config.best_epoch
        assert refit_trainer.current_epoch == config.best_epoch


def test_loss_history_records_and_logs_every_epoch(
    splits, training_parameters, tmp_path
):
    options = _options(training_parameters, "inner_sigmoid", max_epochs=3, min_epochs=3)
    module, data = _fit_parts(splits, options, "inner_sigmoid")
    logger = RecordingLogger()
    trainer = make_trainer(
        options, variant="inner_sigmoid", checkpoint_dir=str(tmp_path), logger=logger
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, datamodule=data)
    # Nothing is logged per step, so an epoch shorter than a logging interval is fine.
    assert trainer.num_training_batches < 50
    assert not [w for w in caught if "log_every_n_steps" in str(w.message)]
    history = recorded_history(module)
    assert history["epoch"].to_list() == [1, 2, 3]
    assert all(math.isfinite(value) for value in history["train_loss"])
    assert logger.logged == [
        (
            row["epoch"],
            {
                "inner_sigmoid.train_loss": pytest.approx(row["train_loss"]),
                "inner_sigmoid.val_loss": pytest.approx(row["val_loss"]),
            },
        )
        for row in history.iter_rows(named=True)
    ]
    assert history["val_loss"][-1] == pytest.approx(
        float(trainer.callback_metrics["inner_sigmoid.val_loss"])
    )
    assert float(trainer.callback_metrics["inner_sigmoid.train_loss"]) == (
        pytest.approx(history["train_loss"][-1])
    )


def test_loss_history_of_a_refit_has_no_val_loss(splits, training_parameters):
    options = _options(training_parameters, "inner_sigmoid")
    module, data = _fit_parts(splits, options, "inner_sigmoid")
    make_trainer(options, variant="inner_sigmoid", fixed_epochs=2).fit(
        module, datamodule=data
    )
    history = recorded_history(module)
    assert history["epoch"].to_list() == [1, 2]
    assert history["val_loss"].is_nan().all()
    assert history["train_loss"].is_finite().all()


class _FakeTrainer:
    world_size = 1
    logger = None

    def __init__(self, epoch: int, val_loss: float | None) -> None:
        self.current_epoch = epoch
        self.callback_metrics = (
            {}
            if val_loss is None
            else {"inner_sigmoid.val_loss": torch.tensor(val_loss)}
        )


@pytest.mark.parametrize(
    ("train_loss_sum", "val_loss"),
    [(1.0, math.nan), (math.inf, 0.5), (math.nan, None)],
)
def test_a_nan_or_infinite_loss_stops_naming_the_epoch(train_loss_sum, val_loss):
    module = RatingRegressor(
        InnerSigmoidModel(3, 3),
        variant="inner_sigmoid",
        learning_rate=0.1,
    )
    module._train_loss_sum.fill_(train_loss_sum)
    module._train_count.fill_(2)
    with pytest.raises(
        FloatingPointError,
        match="inner_sigmoid: the loss became NaN or infinite at epoch 3 ",
    ):
        LossHistory().on_train_epoch_end(_FakeTrainer(2, val_loss), module)
    assert recorded_history(module).height == 0
