"""``evaluation.ranking``: the relevance threshold, stated or a fraction of the data
set's rating scale."""

from __future__ import annotations

import pytest

from rating_prediction.data.schema import MOVIELENS_SCALE, RatingScale
from rating_prediction.parameters import ParameterError, RankingParameters, parse


def _ranking(**values) -> RankingParameters:
    return parse(RankingParameters, values, "evaluation.ranking")


@pytest.mark.parametrize(
    ("scale", "fraction", "threshold"),
    [
        (MOVIELENS_SCALE, 0.75, 3.875),
        (RatingScale(1.0, 10.0), 0.75, 7.75),
        (RatingScale(0.0, 100.0), 0.75, 75.0),
        (RatingScale(1.0, 5.0), 1, 5.0),
        (RatingScale(1.0, 5.0), 0.5, 3.0),
    ],
)
def test_without_a_stated_threshold_it_is_a_fraction_of_the_scale(
    scale, fraction, threshold
):
    assert _ranking(relevance_fraction=fraction).threshold(scale) == threshold


def test_the_default_is_three_quarters_of_the_scale():
    ranking = _ranking()
    assert ranking.relevance_threshold is None
    assert ranking.threshold(MOVIELENS_SCALE) == 3.875


@pytest.mark.parametrize("threshold", [5.0, 0.51, 4.0])
def test_a_stated_threshold_inside_the_scale_is_used_as_it_is(threshold):
    ranking = _ranking(relevance_threshold=threshold, relevance_fraction=0.1)
    assert ranking.threshold(MOVIELENS_SCALE) == threshold


@pytest.mark.parametrize(
    ("scale", "threshold"),
    [(MOVIELENS_SCALE, 0.5), (MOVIELENS_SCALE, 5.01), (RatingScale(1, 10), 0.9)],
)
def test_a_stated_threshold_outside_min_max_is_refused_naming_the_key(scale, threshold):
    with pytest.raises(
        ParameterError,
        match=rf"'evaluation\.ranking\.relevance_threshold': {threshold} is not on "
        rf"the data set's rating scale {scale.min}\.\.{scale.max}",
    ):
        _ranking(relevance_threshold=threshold).threshold(scale)


@pytest.mark.parametrize("fraction", [0, -0.5, 1.01])
def test_a_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(
        ParameterError, match=r"'evaluation\.ranking\.relevance_fraction'"
    ):
        _ranking(relevance_fraction=fraction)
