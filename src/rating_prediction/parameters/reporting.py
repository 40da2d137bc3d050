"""``reporting``: the figures and the summary."""

from __future__ import annotations

from rating_prediction.parameters.base import (
    Parameters,
)
from rating_prediction.parameters.bounds import Buckets


class ReportingParameters(Parameters):
    """``reporting``: the popularity figure's buckets and the summary's figure links."""

    popularity_buckets: Buckets
    summary_figures: dict[str, str]
