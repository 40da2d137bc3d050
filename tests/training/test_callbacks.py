"""The training callbacks: early stopping's patience, reset by every improvement; the
loss history, which grows with the epochs run, not with ``max_epochs``."""

from __future__ import annotations

import math

import torch

from rating_prediction.models.factorization import InnerSigmoidModel
from rating_prediction.models.variants import variant as variant_registry
from rating_prediction.parameters import parse
from rating_prediction.parameters.bounds import MAX_EPOCHS
from rating_prediction.training.callbacks import (
    HISTORY_FIRST_ROWS,
    PatientEarlyStopping,
    history_with_row,
    recorded_history,
)
from rating_prediction.training.feeding import RatingTensors
from rating_prediction.training.fit import lightning_parts
from rating_prediction.training.trainer import make_trainer


class _FakeTrainer:
    def __init__(self):
        self.callback_metrics = {}
        self.current_epoch = 0
        self.should_stop = False


def test_patient_early_stopping_resets_patience_on_improvement():
    # Patience runs out at epoch 3, before the minimum; the improvements at epochs 4 and 6
    # reset it, so the run goes on until two epochs pass without improvement (epoch 8).
    stopper = PatientEarlyStopping("val", patience=2, min_epochs=5)
    trainer = _FakeTrainer()
    stopped_at = None
    for epoch, loss in enumerate([1.0, 1.1, 1.2, 0.9, 1.0, 0.8, 0.9, 1.0, 0.5]):
        trainer.current_epoch = epoch
        trainer.callback_metrics["val"] = torch.tensor(loss)
        stopper.on_train_epoch_end(trainer, None)
        if trainer.should_stop:
            stopped_at = epoch + 1
            break
    assert stopped_at == 8


def test_the_history_grows_in_place_with_the_epochs_run_keeping_its_rows():
    history = torch.full((0, 2), math.nan)
    for epoch in range(HISTORY_FIRST_ROWS + 4):
        grown = history_with_row(history, epoch)
        assert grown is history  # the module's buffer stays the same tensor
        grown[epoch] = torch.tensor([float(epoch), -float(epoch)])
    # First HISTORY_FIRST_ROWS rows, then doubled once: never a row per possible epoch.
    assert history.shape == (2 * HISTORY_FIRST_ROWS, 2)
    done = HISTORY_FIRST_ROWS + 4
    assert history[:done].tolist() == [[float(e), -float(e)] for e in range(done)]
    assert history[done:].isnan().all()


def test_a_huge_max_epochs_allocates_only_the_epochs_run(splits, training_parameters):
    """max_epochs bounds the run; the history holds the epochs done, not a row per
    epoch allowed (the report's 1e9 epochs were 8 GB of NaN before the first one)."""
    options = parse(
        variant_registry("inner_sigmoid").parameters,
        {**training_parameters["inner_sigmoid"], "max_epochs": MAX_EPOCHS},
        "training.inner_sigmoid",
    )
    model = InnerSigmoidModel(
        splits["user_mapping"].height, splits["movie_mapping"].height
    )
    data = (
        RatingTensors.from_frame(splits["train_ratings"]),
        RatingTensors.from_frame(splits["val_ratings"]),
    )
    module, datamodule = lightning_parts("inner_sigmoid", options, model, data)
    assert module.history.shape[0] <= HISTORY_FIRST_ROWS
    make_trainer(options, variant="inner_sigmoid", fixed_epochs=2).fit(
        module, datamodule=datamodule
    )
    assert recorded_history(module)["epoch"].to_list() == [1, 2]
    assert module.history.shape[0] <= HISTORY_FIRST_ROWS
