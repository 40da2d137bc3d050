"""The data ingestion pipeline: a raw MovieLens release to ``ratings`` and ``movies``."""

from kedro.pipeline import Node, Pipeline

from rating_prediction.movielens import read_movies, scan_ratings

from .nodes import (
    clean_movies,
    clean_ratings,
    prepare_raw_release,
    read_predefined_folds,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the data ingestion pipeline."""
    return Pipeline(
        [
            Node(
                func=prepare_raw_release,
                inputs="params:ingestion",
                outputs="raw_release",
                name="prepare_raw_release_node",
            ),
            Node(
                func=scan_ratings,
                inputs="raw_release",
                outputs="raw_ratings",
                name="read_ratings_node",
            ),
            Node(
                func=read_movies,
                inputs="raw_release",
                outputs="raw_movies",
                name="read_movies_node",
            ),
            Node(
                func=read_predefined_folds,
                inputs=["raw_release", "params:processing", "params:cross_validation"],
                outputs="predefined_folds",
                name="read_predefined_folds_node",
            ),
            Node(
                func=clean_ratings,
                inputs=["raw_ratings", "raw_release"],
                outputs=["ratings", "rating_scale"],
                name="clean_ratings_node",
            ),
            Node(
                func=clean_movies,
                inputs="raw_movies",
                outputs="movies",
                name="clean_movies_node",
            ),
        ]
    )
