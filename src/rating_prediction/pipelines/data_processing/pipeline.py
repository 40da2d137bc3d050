"""``data_processing`` pipeline: ``ratings`` to id mappings and train/val/test splits."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    apply_id_mappings,
    create_movie_mapping,
    create_user_mapping,
    filter_top_movies,
    split_ratings,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the data processing pipeline."""
    return Pipeline(
        [
            Node(
                func=filter_top_movies,
                inputs=["ratings", "params:processing"],
                outputs="filtered_ratings",
                name="filter_top_movies_node",
            ),
            Node(
                func=create_user_mapping,
                inputs="filtered_ratings",
                outputs="user_mapping",
                name="create_user_mapping_node",
            ),
            Node(
                func=create_movie_mapping,
                inputs="filtered_ratings",
                outputs="movie_mapping",
                name="create_movie_mapping_node",
            ),
            Node(
                func=apply_id_mappings,
                inputs=["filtered_ratings", "user_mapping", "movie_mapping"],
                outputs="mapped_ratings",
                name="apply_id_mappings_node",
            ),
            Node(
                func=split_ratings,
                inputs=["mapped_ratings", "params:processing", "predefined_folds"],
                outputs=["train_ratings", "val_ratings", "test_ratings"],
                name="split_ratings_node",
            ),
        ]
    )
