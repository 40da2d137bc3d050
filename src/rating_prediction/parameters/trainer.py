"""``training.<variant>.trainer``: the settings passed to ``pytorch_lightning.Trainer``,
checked against what Lightning accepts and what this machine has, before any node runs.

Lightning decides, through its own registries and parsers: the accelerator and strategy
names it registers, the precision values its Trainer takes, how it parses ``devices``
for the accelerator it would pick, whether that accelerator is available here (it counts
GPUs through NVML, without initialising CUDA) and whether a strategy can be built here
(DeepSpeed and XLA need their packages). A value Lightning would refuse inside the
training node, after ingestion and processing have run, is refused when the run starts,
naming its key.

Lightning takes seconds to import, so it is imported only to check a value other than
its Trainer's defaults (every run of conf/base keeps them, ``--pipelines
data_ingestion`` included).
"""

from __future__ import annotations

import functools
import typing
import warnings
from typing import Any

from pydantic import ValidationInfo, field_validator

from rating_prediction.parameters.base import Parameters
from rating_prediction.parameters.bounds import MAX_DEVICES, Nodes

# The Trainer's own defaults, accepted by Lightning on every machine: a block keeping
# them is checked without importing Lightning.
AUTO = "auto"
DEFAULT_PRECISION = "32-true"
# Lightning's name for "a GPU, whichever backend this machine has" (CUDA or MPS).
ANY_GPU = "gpu"
# What each accelerator name asks for, in messages.
DEVICE_NAMES = {
    ANY_GPU: "GPU (CUDA or MPS)",
    "cuda": "CUDA GPU",
    "mps": "MPS GPU",
    "tpu": "TPU",
}
# The precisions that need NVIDIA's transformer_engine package.
TRANSFORMER_ENGINE = "transformer-engine"


class TrainerParameters(Parameters):
    """``training.<variant>.trainer``: passed to ``pytorch_lightning.Trainer`` as they
    are, once Lightning and this machine are known to accept them."""

    accelerator: str = AUTO
    devices: int | list[int] | str = AUTO
    strategy: str = AUTO
    precision: str | int = DEFAULT_PRECISION
    num_nodes: Nodes = 1

    @field_validator("accelerator")
    @classmethod
    def _usable_accelerator(cls, accelerator: str) -> str:
        return check_accelerator(accelerator)

    @field_validator("devices", mode="plain")
    @classmethod
    def _parsed_devices(cls, devices: Any, info: ValidationInfo) -> Any:
        # Checked against the machine only when the accelerator itself was valid.
        return check_devices(devices, info.data.get("accelerator"))

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, strategy: str) -> str:
        return check_strategy(strategy)

    @field_validator("precision", mode="plain")
    @classmethod
    def _known_precision(cls, precision: Any) -> Any:
        return check_precision(precision)


def _one_line(error: BaseException) -> str:
    """Lightning's message of ``error`` on one line (some span two)."""
    return " ".join(str(error).split())


@functools.cache
def _accelerators() -> dict[str, Any]:
    """Lightning's accelerator classes by registered name (cpu, cuda, mps, tpu)."""
    from pytorch_lightning.accelerators import AcceleratorRegistry  # noqa: PLC0415

    return {
        name: AcceleratorRegistry[name]["accelerator"] for name in AcceleratorRegistry
    }


def resolved_accelerator(accelerator: str) -> str | None:
    """The registered accelerator Lightning's Trainer picks for ``accelerator`` on this
    machine (``auto`` and ``gpu`` resolved as the Trainer resolves them), or ``None``
    when this machine has none of it."""
    from pytorch_lightning.trainer.connectors.accelerator_connector import (  # noqa: PLC0415
        _AcceleratorConnector,
    )
    from pytorch_lightning.utilities.exceptions import (  # noqa: PLC0415
        MisconfigurationException,
    )

    if accelerator == AUTO:
        return _AcceleratorConnector._choose_auto_accelerator()
    if accelerator == ANY_GPU:
        try:
            return _AcceleratorConnector._choose_gpu_accelerator_backend()
        except MisconfigurationException:
            return None
    return accelerator if _accelerators()[accelerator].is_available() else None


def check_accelerator(accelerator: str) -> str:
    """``accelerator`` when Lightning knows the name and this machine has the device.

    Raises:
        ValueError: Naming the value and the accelerators usable here.
    """
    if accelerator == AUTO:
        return accelerator
    names = [AUTO, ANY_GPU, *sorted(_accelerators())]
    if accelerator not in names:
        raise ValueError(
            f"{accelerator!r} is not an accelerator Lightning knows; valid: "
            f"{', '.join(names)}"
        )
    if resolved_accelerator(accelerator) is None:
        usable = [name for name in names if resolved_accelerator(name) is not None]
        device = DEVICE_NAMES.get(accelerator, accelerator)
        raise ValueError(
            f"{accelerator!r}: no {device} found on this machine (Lightning finds "
            f"none); usable here: {', '.join(usable)}"
        )
    return accelerator


def check_devices(devices: Any, accelerator: str | None) -> Any:
    """``devices`` when Lightning parses it for ``accelerator`` on this machine:
    ``auto``, a number of devices (-1: all), a list of device indices, or the same as a
    string (``"2"``, ``"0,1"``). ``accelerator`` ``None`` (itself invalid): only the
    form is checked.

    Raises:
        ValueError: Naming the value and what Lightning said of it.
    """
    if devices == AUTO:
        return devices
    _check_device_form(devices)
    if accelerator is None:
        return devices
    from pytorch_lightning.utilities.exceptions import (  # noqa: PLC0415
        MisconfigurationException,
    )

    picked = resolved_accelerator(accelerator)
    try:
        _accelerators()[picked].parse_devices(devices)
    except (MisconfigurationException, TypeError, ValueError) as error:
        raise ValueError(
            f"{devices!r} with accelerator {accelerator!r} ({picked} on this "
            f"machine) is refused by Lightning: {_one_line(error)}"
        ) from None
    return devices


def _check_device_form(devices: Any) -> None:
    """What Lightning accepts of ``devices`` on any machine, within ``MAX_DEVICES``."""
    from lightning_fabric.utilities.device_parser import (  # noqa: PLC0415
        _normalize_parse_gpu_string_input,
    )

    usage = (
        f"must be 'auto', a number of devices from 1 to {MAX_DEVICES} (-1: all), a "
        "list of distinct device indices such as [0, 1], or the same as a string "
        f"such as '2' or '0,1'; got {devices!r}"
    )
    parsed = devices
    if isinstance(devices, str):
        try:
            parsed = _normalize_parse_gpu_string_input(devices)
        except ValueError:
            raise ValueError(usage) from None
    if isinstance(parsed, list):
        indices = all(
            type(index) is int and 0 <= index < MAX_DEVICES for index in parsed
        )
        if not (parsed and indices and len(set(parsed)) == len(parsed)):
            raise ValueError(usage)
    elif type(parsed) is not int or not (parsed == -1 or 1 <= parsed <= MAX_DEVICES):
        raise ValueError(usage)


@functools.cache
def _strategy_names() -> tuple[str, ...]:
    from pytorch_lightning.strategies import StrategyRegistry  # noqa: PLC0415

    return tuple(StrategyRegistry.available_strategies())


def check_strategy(strategy: str) -> str:
    """``strategy`` when it is ``auto`` or a strategy Lightning registers (any case, as
    the Trainer reads it) that can be built here.

    Raises:
        ValueError: Naming the value and the valid names, or why it cannot be built.
    """
    if strategy == AUTO:
        return strategy
    if strategy.lower() not in _strategy_names():
        raise ValueError(
            f"{strategy!r} is not a strategy Lightning knows; valid: "
            f"{', '.join([AUTO, *_strategy_names()])}"
        )
    missing = _missing_package(strategy.lower())
    if missing:
        raise ValueError(f"{strategy!r} cannot run on this machine: {missing}")
    return strategy


def _missing_package(strategy: str) -> str | None:
    """Lightning's message when building ``strategy`` needs a package this machine
    lacks (DeepSpeed, torch_xla); ``None`` when it builds, or needs arguments only the
    Trainer gives it."""
    from pytorch_lightning.strategies import StrategyRegistry  # noqa: PLC0415
    from pytorch_lightning.utilities.exceptions import (  # noqa: PLC0415
        MisconfigurationException,
    )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated aliases warn when built
            StrategyRegistry.get(strategy)
    except (MisconfigurationException, ImportError) as error:
        return _one_line(error)
    except TypeError:  # needs the Trainer's arguments (a device): built there
        return None
    return None


@functools.cache
def precision_values() -> tuple[int | str, ...]:
    """Every ``precision`` Lightning's Trainer takes (its ``_PRECISION_INPUT``)."""
    from pytorch_lightning.trainer.connectors.accelerator_connector import (  # noqa: PLC0415
        _PRECISION_INPUT,
    )

    def literals(annotation: Any) -> list[int | str]:
        if typing.get_origin(annotation) is typing.Literal:
            return list(typing.get_args(annotation))
        return [
            value for part in typing.get_args(annotation) for value in literals(part)
        ]

    return tuple(literals(_PRECISION_INPUT))


def check_precision(precision: Any) -> Any:
    """``precision`` when Lightning's Trainer takes it (an int such as 32 or a string
    such as ``"bf16-mixed"``; not a float or a boolean).

    Raises:
        ValueError: Naming the value and the valid ones.
    """
    if precision == DEFAULT_PRECISION:
        return precision
    valid = precision_values()
    if type(precision) not in (int, str) or precision not in valid:
        raise ValueError(
            f"{precision!r} is not a precision Lightning takes; valid: "
            f"{', '.join(repr(value) for value in valid)}"
        )
    if str(precision).startswith(TRANSFORMER_ENGINE):
        from lightning_fabric.plugins.precision.transformer_engine import (  # noqa: PLC0415
            _TRANSFORMER_ENGINE_AVAILABLE,
        )

        if not _TRANSFORMER_ENGINE_AVAILABLE:
            raise ValueError(
                f"{precision!r} cannot run on this machine: "
                f"{_one_line(_TRANSFORMER_ENGINE_AVAILABLE.message)}"
            )
    return precision
