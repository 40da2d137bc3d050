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

import rating_prediction.training.fit as fit_module
from rating_prediction.parameters import parse, variant_parameters_model
from rating_prediction.training import fit_variant, make_trainer

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
    return parse(variant_parameters_model(variant), values, f"training.{variant}")


def _fit(splits, options, variant, monkeypatch):
    """``fit_variant``'s weights, config and history, and the Trainers it used."""
    trainers = []

    def recording_make_trainer(*args, **kwargs):
        trainers.append(make_trainer(*args, **kwargs))
        return trainers[-1]

    monkeypatch.setattr(fit_module, "make_trainer", recording_make_trainer)
    weights, config, history = fit_variant(
        variant,
        options,
        splits["train_ratings"],
        splits["val_ratings"],
        n_users=splits["user_mapping"].height,
        n_movies=splits["movie_mapping"].height,
    )
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
