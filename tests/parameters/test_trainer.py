"""``training.<variant>.trainer``: checked against what Lightning accepts and what this
machine has, naming the key, before a Trainer is ever built."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from rating_prediction.models.variants import variant
from rating_prediction.parameters import ParameterError, parse
from rating_prediction.parameters.trainer import check_devices

# Whether Lightning finds a GPU here: CUDA, or Apple's MPS.
HAS_GPU = torch.cuda.is_available() or torch.backends.mps.is_available()


def _trainer(training_parameters, **trainer):
    """``training.biased_mf`` with ``trainer`` merged into its trainer block."""
    block = training_parameters["biased_mf"]
    block = block | {"trainer": block["trainer"] | trainer}
    return parse(variant("biased_mf").parameters, block, "training.biased_mf").trainer


REFUSED = {
    "an unknown accelerator": (
        {"accelerator": "nonsense"},
        r"'training\.biased_mf\.trainer\.accelerator': 'nonsense' is not an "
        r"accelerator Lightning knows; valid: auto, gpu, cpu, cuda, mps, tpu",
    ),
    "a TPU this machine lacks": (
        {"accelerator": "tpu"},
        r"'training\.biased_mf\.trainer\.accelerator': 'tpu': no TPU found on this "
        r"machine .*usable here: auto, cpu",
    ),
    "devices that are no number": (
        {"devices": "abc"},
        r"'training\.biased_mf\.trainer\.devices': must be 'auto', a number of "
        r"devices from 1 to 1024 .*got 'abc'",
    ),
    "zero devices": ({"devices": 0}, r"'training\.biased_mf\.trainer\.devices': must"),
    "a boolean as devices": (
        {"devices": True},
        r"'training\.biased_mf\.trainer\.devices': must.*got True",
    ),
    "more devices than the bound": (
        {"devices": 10**9},
        r"'training\.biased_mf\.trainer\.devices': must.*got 1000000000",
    ),
    "repeated device indices": (
        {"devices": [0, 0]},
        r"'training\.biased_mf\.trainer\.devices': must.*got \[0, 0\]",
    ),
    "an unknown strategy": (
        {"strategy": "nonsense"},
        r"'training\.biased_mf\.trainer\.strategy': 'nonsense' is not a strategy "
        r"Lightning knows; valid: auto, ddp, ddp_spawn,",
    ),
    "precision 13 as a string": (
        {"precision": "13"},
        r"'training\.biased_mf\.trainer\.precision': '13' is not a precision "
        r"Lightning takes; valid: 64, 32, 16, 'transformer-engine'",
    ),
    "precision 13": (
        {"precision": 13},
        r"'training\.biased_mf\.trainer\.precision': 13 is not a precision",
    ),
    "precision as a float": (
        {"precision": 16.0},
        r"'training\.biased_mf\.trainer\.precision': 16\.0 is not a precision",
    ),
    "nodes past the bound": (
        {"num_nodes": 10**6},
        r"'training\.biased_mf\.trainer\.num_nodes': Input should be less than or "
        r"equal to 10000",
    ),
}


@pytest.mark.parametrize(
    ("trainer", "message"), list(REFUSED.values()), ids=list(REFUSED)
)
def test_a_trainer_setting_lightning_or_the_machine_refuses_is_named(
    training_parameters, trainer, message
):
    with pytest.raises(ParameterError, match=message):
        _trainer(training_parameters, **trainer)


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_a_gpu_accelerator_without_a_gpu_is_refused(training_parameters, accelerator):
    with pytest.raises(
        ParameterError,
        match=rf"'training\.biased_mf\.trainer\.accelerator': '{accelerator}': no "
        r".*GPU.* found on this machine \(Lightning finds none\); usable here: auto, cpu",
    ):
        _trainer(training_parameters, accelerator=accelerator)


def test_devices_lightning_refuses_for_the_cpu_name_what_it_said(training_parameters):
    # Lightning's CPU accelerator takes a number of processes, not device indices.
    with pytest.raises(
        ParameterError,
        match=r"'training\.biased_mf\.trainer\.devices': \[0\] with accelerator "
        r"'cpu' \(cpu on this machine\) is refused by Lightning: `devices` selected "
        r"with `CPUAccelerator` should be an int > 0",
    ):
        _trainer(training_parameters, accelerator="cpu", devices=[0])


@pytest.mark.parametrize(
    "trainer",
    [
        {},
        {"accelerator": "auto", "devices": "auto"},
        {"accelerator": "cpu", "devices": 1},
        {"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"},
        {"devices": "2"},
        {"strategy": "DDP"},  # Lightning reads strategy names in any case
        {"precision": "32-true"},
        {"precision": "bf16-mixed"},
        {"precision": 16},
        {"precision": "64"},
        {"num_nodes": 2},
    ],
)
def test_settings_lightning_takes_here_are_kept(training_parameters, trainer):
    parsed = _trainer(training_parameters, **trainer)
    assert parsed.model_dump().items() >= trainer.items()


@pytest.mark.parametrize("devices", ["auto", 1, -1, [0], [0, 1], "0,1", "3", "-1"])
def test_device_forms_lightning_parses(devices):
    # The form alone (no accelerator to parse them for): what the machine has aside.
    assert check_devices(devices, None) == devices


@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU")
def test_a_gpu_this_machine_has_is_accepted(training_parameters):
    parsed = _trainer(training_parameters, accelerator="gpu", devices=[0])
    assert (parsed.accelerator, parsed.devices) == ("gpu", [0])
    with pytest.raises(
        ParameterError, match=r"trainer\.devices'.*refused by Lightning"
    ):
        _trainer(training_parameters, accelerator="gpu", devices=[1023])


def test_the_default_trainer_settings_are_checked_without_importing_lightning():
    """Lightning takes seconds to import: a run that keeps its Trainer's defaults (every
    run of conf/base, `--pipelines data_ingestion` included) does not pay for it."""
    script = (
        "import sys\n"
        "from rating_prediction.parameters import TrainerParameters, parse\n"
        "parse(TrainerParameters, {'accelerator': 'auto', 'devices': 'auto', "
        "'strategy': 'auto', 'precision': '32-true', 'num_nodes': 1}, 't')\n"
        "assert 'pytorch_lightning' not in sys.modules, 'Lightning was imported'\n"
        "parse(TrainerParameters, {'accelerator': 'cpu'}, 't')\n"
        "assert 'pytorch_lightning' in sys.modules, 'cpu was not checked'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
