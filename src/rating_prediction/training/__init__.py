"""Training a rating model with PyTorch Lightning, independent of Kedro.

- :mod:`~rating_prediction.training.feeding`: ratings as tensors, batches, the DataModule;
- :mod:`~rating_prediction.training.module`: the LightningModule and its optimizers;
- :mod:`~rating_prediction.training.callbacks`: early stopping and the loss history;
- :mod:`~rating_prediction.training.trainer`: the one ``Trainer`` configuration;
- :mod:`~rating_prediction.training.mlflow_logger`: logging into kedro-mlflow's run;
- :mod:`~rating_prediction.training.fit`: training one variant, end to end.
"""

from rating_prediction.training.callbacks import (
    LossHistory,
    PatientEarlyStopping,
    recorded_history,
)
from rating_prediction.training.feeding import (
    Batch,
    RatingsDataModule,
    RatingTensors,
    ShuffledBatches,
)
from rating_prediction.training.fit import (
    check_split,
    fit_variant,
    lightning_parts,
    new_model,
)
from rating_prediction.training.mlflow_logger import (
    ActiveRunMLFlowLogger,
    logger_for_active_run,
)
from rating_prediction.training.module import (
    RatingRegressor,
    loss_key,
    make_optimizers,
    split_parameters,
)
from rating_prediction.training.trainer import make_trainer

__all__ = [
    "ActiveRunMLFlowLogger",
    "Batch",
    "LossHistory",
    "PatientEarlyStopping",
    "RatingRegressor",
    "RatingTensors",
    "RatingsDataModule",
    "ShuffledBatches",
    "check_split",
    "fit_variant",
    "lightning_parts",
    "logger_for_active_run",
    "loss_key",
    "make_optimizers",
    "make_trainer",
    "new_model",
    "recorded_history",
    "split_parameters",
]
