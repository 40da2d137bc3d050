"""The popularity blend through the inference nodes: ``recommend_movies`` and
``recommend_for_all_users`` serve the evaluation's blended top K, and a bad weight
is refused naming its key. The served model is tests/serving/blend_fixtures.py's."""

import pytest

from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.inference.nodes import (
    recommend_for_all_users,
    recommend_movies,
)
from tests.serving.blend_fixtures import K, blended, evaluation_top_k, served_top_k
from tests.serving.fixtures import answered, inference_parameters


class TestNodes:
    def test_recommend_movies_and_all_users_blend(self, blend_served, train):
        inference = inference_parameters(
            recommend={"user_ids": [4, 9], "top_k": K, "popularity_weight": 0.5},
            batch_recommend={"top_k": K, "block_size": 4},
        )
        expected = evaluation_top_k(
            blend_served, train, blended(blend_served, train, 0.5)
        )
        few = recommend_movies(blend_served, train, inference)
        assert served_top_k(few) == [row for row in expected if row[0] in (4, 9)]
        batch = answered(recommend_for_all_users(blend_served, train, None, inference))
        assert served_top_k(batch) == expected

    @pytest.mark.parametrize("weight", [-0.1, 1.5, "a", True, None])
    @pytest.mark.parametrize(
        "node",
        [
            recommend_movies,
            lambda served, rated, inference: recommend_for_all_users(
                served, rated, None, inference
            ),
        ],
        ids=["recommend_movies", "recommend_for_all_users"],
    )
    def test_bad_weights_name_the_key(self, blend_served, train, node, weight):
        inference = inference_parameters(recommend={"popularity_weight": weight})
        with pytest.raises(
            ParameterError, match="'inference.recommend.popularity_weight'"
        ):
            node(blend_served, train, inference)
