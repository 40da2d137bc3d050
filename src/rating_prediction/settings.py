"""Project settings. See https://docs.kedro.org/en/stable/configure/configuration_basics/"""

from omegaconf.resolvers import oc

from rating_prediction.hooks import (
    LineageHooks,
    NodeTimingHooks,
    ParameterCheckHooks,
    RunGuardHooks,
    RunStatusHooks,
    ServingHooks,
    SparkHooks,
)
from rating_prediction.runtime.environment import RunEnvironmentStore
from rating_prediction.runtime.tracking import RedactingMlflowHook

# RedactingMlflowHook replaces kedro-mlflow's own hook instance (disabled below); last,
# so it is called where the plugin's was (pluggy calls the last registered first). The
# order of the others is set by their tryfirst / trylast marks: the lock before the
# MLflow run opens, the run's tags after, the model logged before it ends (with the
# run's own lineage, to check the metrics that tag it).
LINEAGE_HOOKS = LineageHooks()
HOOKS = (
    ParameterCheckHooks(),
    RunGuardHooks(),
    RunStatusHooks(),
    LINEAGE_HOOKS,
    NodeTimingHooks(),
    ServingHooks(LINEAGE_HOOKS),
    SparkHooks(),
    RedactingMlflowHook(),
)
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)

# Kedro's default session store (nothing persisted) that also records the run's
# configuration environment: register_pipelines() gets none, and `--env spark` runs
# the Spark pipelines instead of the others (rating_prediction.runtime.environment).
SESSION_STORE_CLASS = RunEnvironmentStore

# `oc.env` is enabled for all configuration (Kedro enables it for credentials only) so that
# conf/base/mlflow.yml can honour MLFLOW_TRACKING_URI and fall back to the SQLite store.
# Kedro registers it with omegaconf's deprecated register_new_resolver, as it does its own
# resolvers: that warning is ignored in runtime/library_warnings.py.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"oc.env": oc.env},
    # Environments (conf/local, conf/scale) override single keys of the nested parameters
    # instead of replacing whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
    # conf/spark/spark.yml: the Spark properties the session of `--env spark` is built
    # from (SparkHooks), as in Kedro's PySpark starter.
    "config_patterns": {"spark": ["spark*", "spark*/**"]},
}
