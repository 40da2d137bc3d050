"""Several optimizer steps per Lightning ``training_step``: the same training as one.

Grouping changes only how often Lightning's per-step hooks run. The batches, their
order, the updates, the per-epoch losses, early stopping, the best checkpoint and the
refit must be those of one optimizer step per ``training_step``, bit for bit on one
thread, whether the variant trains with Adam, SparseAdam or both.
"""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_lightning import Callback

import rating_prediction.training.fit as fit_module
from rating_prediction.models.variants import variant as variant_registry
from rating_prediction.parameters import parse
from rating_prediction.training.fit import fit_variant
from rating_prediction.training.module import backward_is_plain
from rating_prediction.training.trainer import make_trainer
from tests.fakes import training_data

# Does not divide the 17 batches of an epoch (8,400 ratings in batches of 512): every
# epoch ends with a partial group of 2.
GROUP = 5

# (variant, changes): Adam with weight decay, SparseAdam with a refit on train + val,
# Adam next to SparseAdam, and Lightning's mixed precision (autocast) around the steps.
VARIANTS = {
    "dense": (
        "inner_sigmoid",
        {"model": {"sparse": False}, "optimizer": {"weight_decay": 1e-3}},
    ),
    "sparse": ("biased_mf", {"model": {"sparse": True}, "refit_on_train_val": True}),
    "dense and sparse": ("inner_sigmoid", {"model": {"sparse": True}}),
    "bf16-mixed": ("inner_sigmoid", {"trainer": {"precision": "bf16-mixed"}}),
}


@pytest.fixture
def one_thread():
    """One intra-op thread: parallel reductions could otherwise differ in the last bit
    from run to run, whatever the grouping."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _options(training_parameters, variant, changes, steps_per_training_step):
    values = training_parameters[variant] | {
        "optimizer_steps_per_training_step": steps_per_training_step,
    }
    for key, change in changes.items():
        values[key] = values[key] | change if isinstance(change, dict) else change
    return parse(variant_registry(variant).parameters, values, f"training.{variant}")


def _fit(splits, options, variant, monkeypatch, callback: Callback | None = None):
    """``fit_variant``'s weights, config and history, and the Trainers it used (each
    with ``callback`` added, if given)."""
    trainers = []

    def recording_make_trainer(*args, **kwargs):
        trainers.append(make_trainer(*args, **kwargs))
        if callback is not None:
            trainers[-1].callbacks.append(callback)
        return trainers[-1]

    monkeypatch.setattr(fit_module, "make_trainer", recording_make_trainer)
    weights, config, history = fit_variant(variant, options, training_data(splits))
    return weights, config, history, trainers


def _batches_per_epoch(splits, options) -> int:
    return math.ceil(splits["train_ratings"].height / options.batch_size)


@pytest.mark.parametrize("kind", VARIANTS)
def test_grouped_steps_train_the_same_weights_as_single_steps(
    splits, training_parameters, monkeypatch, one_thread, kind
):
    variant, changes = VARIANTS[kind]
    changes = changes | {"max_epochs": 4, "min_epochs": 4}
    single = _options(training_parameters, variant, changes, 1)
    grouped = _options(training_parameters, variant, changes, GROUP)
    batches = _batches_per_epoch(splits, single)
    assert batches % GROUP != 0

    one = _fit(splits, single, variant, monkeypatch)
    many = _fit(splits, grouped, variant, monkeypatch)

    assert one[0].keys() == many[0].keys()
    for name, tensor in one[0].items():
        assert torch.equal(tensor, many[0][name]), name
    assert one[2].equals(many[2])
    assert one[2].height == 4
    timing = {"fit_seconds"}
    assert one[1].model_dump(exclude=timing) == many[1].model_dump(exclude=timing)
    # The same optimizer steps in fewer training steps, in the fit and in any refit.
    assert len(one[3]) == len(many[3]) == (2 if grouped.refit_on_train_val else 1)
    for one_trainer, many_trainer in zip(one[3], many[3], strict=True):
        assert one_trainer.global_step == many_trainer.global_step > 0
    assert one[3][0].num_training_batches == batches
    assert many[3][0].num_training_batches == math.ceil(batches / GROUP)


def test_early_stopping_stops_at_the_same_epoch_when_steps_are_grouped(
    splits, training_parameters, monkeypatch, one_thread
):
    # Large unregularised factors on few ratings overfit fast: val loss turns up and
    # patience runs out well before max_epochs.
    changes = {
        "max_epochs": 30,
        "min_epochs": 1,
        "refit_on_train_val": False,
        "model": {"embedding_dim": 64, "factor_reg": 0.0},
        "optimizer": {"learning_rate": 0.05},
    }
    single = _options(training_parameters, "biased_mf", changes, 1)
    grouped = _options(training_parameters, "biased_mf", changes, GROUP)

    _, one_config, one_history, _ = _fit(splits, single, "biased_mf", monkeypatch)
    _, many_config, many_history, _ = _fit(splits, grouped, "biased_mf", monkeypatch)

    assert one_history.height < single.max_epochs
    assert many_history.height == one_history.height
    assert many_config.best_epoch == one_config.best_epoch < one_history.height
    assert many_history["val_loss"].to_list() == one_history["val_loss"].to_list()


class BackwardHookCounter(Callback):
    """Defines both backward hooks, so Lightning's ``manual_backward`` must run."""

    def __init__(self) -> None:
        self.calls = {"on_before_backward": 0, "on_after_backward": 0}

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.calls["on_before_backward"] += 1

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls["on_after_backward"] += 1


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_plain_backward_trains_the_weights_of_lightnings_backward(
    splits, training_parameters, monkeypatch, one_thread, kind
):
    """Where nothing needs Lightning's backward, ``loss.backward()`` is called
    directly; a callback defining a backward hook brings Lightning's back, with the
    hooks called once per optimizer step, and the weights are the same either way."""
    variant, changes = VARIANTS[kind]
    options = _options(
        training_parameters,
        variant,
        changes | {"max_epochs": 2, "min_epochs": 2},
        GROUP,
    )
    plain = _fit(splits, options, variant, monkeypatch)
    counter = BackwardHookCounter()
    hooked = _fit(splits, options, variant, monkeypatch, counter)

    assert all(
        backward_is_plain(trainer, trainer.lightning_module) for trainer in plain[3]
    )
    assert not any(
        backward_is_plain(trainer, trainer.lightning_module) for trainer in hooked[3]
    )
    steps = sum(trainer.global_step for trainer in hooked[3])
    assert steps == sum(trainer.global_step for trainer in plain[3]) > 0
    assert counter.calls == {"on_before_backward": steps, "on_after_backward": steps}
    for name, tensor in plain[0].items():
        assert torch.equal(tensor, hooked[0][name]), name
    assert plain[2].equals(hooked[2])


def test_mixed_precision_keeps_lightnings_backward(
    splits, training_parameters, monkeypatch
):
    variant, changes = VARIANTS["bf16-mixed"]
    options = _options(
        training_parameters,
        variant,
        changes | {"max_epochs": 1, "min_epochs": 1},
        GROUP,
    )
    trainers = _fit(splits, options, variant, monkeypatch)[3]
    assert not backward_is_plain(trainers[0], trainers[0].lightning_module)
