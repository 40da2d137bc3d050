"""The training tests' inputs: small learnable splits and the project's parameters."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from kedro.config import OmegaConfigLoader

from tests.fakes import learnable_splits

CONF_SOURCE = Path(__file__).resolve().parents[2] / "conf"


def project_training_parameters() -> dict[str, Any]:
    """``training`` from conf/base/parameters_training.yml as Kedro loads it: the YAML
    anchors resolved into independent dicts per variant, ``_`` keys dropped."""
    with warnings.catch_warnings():
        # omegaconf's notice about the resolver registration Kedro uses.
        warnings.simplefilter("ignore", UserWarning)
        loader = OmegaConfigLoader(
            str(CONF_SOURCE),
            base_env="base",
            default_run_env="base",
            config_patterns={"training": ["parameters_training*"]},
        )
        return loader["training"]["training"]


@pytest.fixture(scope="session")
def splits() -> dict[str, pl.DataFrame]:
    return learnable_splits()


@pytest.fixture
def training_parameters() -> dict[str, Any]:
    """The project's training parameters, quiet and on the CPU."""
    parameters = project_training_parameters()
    # bayesian_fm is Gibbs-sampled by myFM: no Lightning settings; a short chain.
    parameters["bayesian_fm"] |= {"n_iter": 12, "n_kept_samples": 8}
    for options in parameters.values():
        if "trainer" not in options:
            continue
        options["progress_bar_refresh_rate"] = 0
        options["trainer"]["accelerator"] = "cpu"
        options["batch_size"] = 512
    return parameters
