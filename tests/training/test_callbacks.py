"""The training callbacks: early stopping's patience, reset by every improvement."""

from __future__ import annotations

import torch

from rating_prediction.training.callbacks import PatientEarlyStopping


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
