"""The ``spark_preparation`` pipeline: a release to ``ratings`` and ``movies``, then
to the id mappings and the splits, every table a Spark DataFrame written as
partitioned parquet (conf/spark/catalog_spark_preparation.yml)."""

from kedro.pipeline import Node, Pipeline

from rating_prediction.movielens import read_movies

from .nodes import (
    apply_id_mappings,
    check_spark_release,
    clean_spark_ratings,
    create_movie_mapping,
    create_user_mapping,
    filter_top_movies,
    prepare_spark_release,
    read_release_ratings,
    spark_movies,
    split_ratings,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the Spark data preparation pipeline: ingestion, then processing."""
    return Pipeline([*_ingestion_nodes(), *_processing_nodes()])


def _ingestion_nodes() -> list[Node]:
    """Read, check every rating, then write: bad ratings leave nothing written."""
    return [
        Node(
            prepare_spark_release,
            "params:ingestion",
            "raw_release",
            name="spark_prepare_raw_release_node",
        ),
        Node(
            read_release_ratings,
            "raw_release",
            "raw_ratings",
            name="spark_read_ratings_node",
        ),
        Node(read_movies, "raw_release", "raw_movies", name="spark_read_movies_node"),
        Node(
            check_spark_release,
            ["raw_ratings", "raw_release"],
            "ratings_profile",
            name="spark_check_ratings_node",
        ),
        Node(
            clean_spark_ratings,
            ["raw_ratings", "ratings_profile"],
            ["ratings", "rating_scale"],
            name="spark_clean_ratings_node",
        ),
        Node(
            spark_movies,
            ["raw_movies", "ratings_profile"],
            "movies",
            name="spark_clean_movies_node",
        ),
    ]


def _processing_nodes() -> list[Node]:
    """The top-N filter, the id mappings and the split."""
    return [
        Node(
            filter_top_movies,
            ["ratings", "params:processing"],
            "filtered_ratings",
            name="spark_filter_top_movies_node",
        ),
        Node(
            create_user_mapping,
            "filtered_ratings",
            "user_mapping",
            name="spark_create_user_mapping_node",
        ),
        Node(
            create_movie_mapping,
            "filtered_ratings",
            "movie_mapping",
            name="spark_create_movie_mapping_node",
        ),
        Node(
            apply_id_mappings,
            ["filtered_ratings", "user_mapping", "movie_mapping"],
            "mapped_ratings",
            name="spark_apply_id_mappings_node",
        ),
        Node(
            split_ratings,
            ["mapped_ratings", "params:processing"],
            ["train_ratings", "val_ratings", "test_ratings"],
            name="spark_split_ratings_node",
        ),
    ]
