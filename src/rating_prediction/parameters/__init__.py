"""Typed parameters: one pydantic model per block of ``conf/*/parameters_*.yml``.

Every model rejects unknown keys and degenerate values, so a misspelt key such as
``processing.top_n_movie`` or ``training.biased_mf.max_epoch`` is an error instead of a
silently ignored setting. ``ProjectParameters`` checks the whole tree when the Kedro
context is created (see :mod:`rating_prediction.hooks`), before any node runs; each node
parses its own block again with :func:`parse` and then works with typed attributes.

One module per block (:mod:`.ingestion`, :mod:`.processing`, :mod:`.training`,
:mod:`.tuning`, :mod:`.evaluation`, :mod:`.cross_validation`, :mod:`.reporting`,
:mod:`.inference`), :mod:`.project` for the whole tree and :mod:`.base` for what they
share; the names below are re-exported so callers need not know which module holds a
block.
"""

from rating_prediction.parameters.base import ParameterError, Parameters, parse
from rating_prediction.parameters.cross_validation import CrossValidationParameters
from rating_prediction.parameters.evaluation import (
    BiasBaselineParameters,
    EvaluationParameters,
    RankingParameters,
)
from rating_prediction.parameters.inference import (
    MAX_PARAMETER_REQUESTS,
    BatchRecommendParameters,
    FoldInParameters,
    InferenceParameters,
    RecommendParameters,
    RequestFileParameters,
    SimilarParameters,
)
from rating_prediction.parameters.ingestion import (
    OWN_FILE,
    IngestionParameters,
    OwnFileSettings,
    SyntheticSettings,
)
from rating_prediction.parameters.processing import (
    ProcessingParameters,
    SplitParameters,
)
from rating_prediction.parameters.project import ProjectParameters
from rating_prediction.parameters.reporting import ReportingParameters
from rating_prediction.parameters.training import (
    AlsParameters,
    BayesianFMFeatures,
    BayesianFMParameters,
    BiasedMFArguments,
    BprParameters,
    EaseParameters,
    InnerSigmoidArguments,
    OptimizerParameters,
    ScaleFromData,
    TrainerParameters,
    TrainingParameters,
    VariantParameters,
)
from rating_prediction.parameters.tuning import SearchDimension, TuningParameters

__all__ = [
    "MAX_PARAMETER_REQUESTS",
    "AlsParameters",
    "BatchRecommendParameters",
    "BayesianFMFeatures",
    "BayesianFMParameters",
    "BiasBaselineParameters",
    "BiasedMFArguments",
    "BprParameters",
    "CrossValidationParameters",
    "EaseParameters",
    "EvaluationParameters",
    "FoldInParameters",
    "InferenceParameters",
    "IngestionParameters",
    "OWN_FILE",
    "OwnFileSettings",
    "InnerSigmoidArguments",
    "OptimizerParameters",
    "ParameterError",
    "Parameters",
    "ProcessingParameters",
    "ProjectParameters",
    "RankingParameters",
    "RecommendParameters",
    "ReportingParameters",
    "RequestFileParameters",
    "ScaleFromData",
    "SearchDimension",
    "SimilarParameters",
    "SplitParameters",
    "SyntheticSettings",
    "TrainerParameters",
    "TrainingParameters",
    "TuningParameters",
    "VariantParameters",
    "parse",
]
