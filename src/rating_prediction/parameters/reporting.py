"""``reporting``: the figures and the summary."""

from __future__ import annotations

from rating_prediction.parameters.base import (
    Parameters,
    PositiveInt,
)


class ReportingParameters(Parameters):
    """``reporting``: the popularity figure's buckets and the summary's figure links."""

    popularity_buckets: PositiveInt
    summary_figures: dict[str, str]
