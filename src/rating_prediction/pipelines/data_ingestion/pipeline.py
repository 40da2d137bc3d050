"""The data ingestion pipeline: a raw MovieLens release to ``ratings``, ``movies`` and
``users``."""

from kedro.pipeline import Node, Pipeline

from rating_prediction.movielens import read_movies, read_users, scan_ratings

from .nodes import (
    check_release,
    clean_movies,
    clean_ratings,
    clean_users,
    prepare_raw_release,
    read_predefined_folds,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the data ingestion pipeline: read, then check, then write."""
    return Pipeline([*_reading_nodes(), *_writing_nodes()])


def _reading_nodes() -> list[Node]:
    """Find the release and read it lazily: nothing is written yet."""
    return [
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
            func=read_users,
            inputs="raw_release",
            outputs="raw_users",
            name="read_users_node",
        ),
    ]


def _writing_nodes() -> list[Node]:
    """Check every rating, then write: each node that writes a file runs after the
    checks, so bad ratings leave nothing written."""
    return [
        Node(
            func=check_release,
            inputs=["raw_ratings", "raw_release"],
            outputs=["ratings_profile", "checked_release"],
            name="check_ratings_node",
        ),
        Node(
            func=read_predefined_folds,
            inputs=[
                "checked_release",
                "params:processing",
                "params:cross_validation",
            ],
            outputs="predefined_folds",
            name="read_predefined_folds_node",
        ),
        Node(
            func=clean_ratings,
            inputs=["raw_ratings", "ratings_profile"],
            outputs=["ratings", "rating_scale"],
            name="clean_ratings_node",
        ),
        Node(
            func=clean_movies,
            inputs=["raw_movies", "ratings_profile"],
            outputs="movies",
            name="clean_movies_node",
        ),
        Node(
            func=clean_users,
            inputs=["raw_users", "ratings_profile"],
            outputs="users",
            name="clean_users_node",
        ),
    ]
