"""Lightning's MLflow logger attached to the run that kedro-mlflow opened for this ``kedro run``."""

from __future__ import annotations

import mlflow
from pytorch_lightning.loggers import MLFlowLogger


class ActiveRunMLFlowLogger(MLFlowLogger):
    """Logs into an existing run and leaves its lifecycle to whoever opened it.

    Lightning's ``MLFlowLogger.finalize`` marks the run as terminated; here kedro-mlflow
    closes the run at the end of the pipeline, after evaluation and reporting have logged too.
    """

    def finalize(self, status: str = "success") -> None:
        """Do not terminate the run: kedro-mlflow ends it."""


def logger_for_active_run() -> ActiveRunMLFlowLogger | None:
    """A logger writing into the active MLflow run, or ``None`` when no run is active."""
    run = mlflow.active_run()
    if run is None:
        return None
    return ActiveRunMLFlowLogger(
        run_id=run.info.run_id,
        tracking_uri=mlflow.get_tracking_uri(),
        log_model=False,
    )
