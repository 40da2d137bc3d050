"""A tiny hand-set biased MF model and id mappings, with ids unseen in training, and
the rankers fitted on them.

Users 10, 20, 30 and movies 1-4 appear in train. User 40 and movie 5 are mapped (they
appear in val / test only) but unseen in training, so their parameters are zero.
Session-scoped: the frames are immutable and no test changes the configs or weights.
"""

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch

from rating_prediction.data.schema import (
    MAPPED_RATINGS_SCHEMA,
    MOVIE_MAPPING_SCHEMA,
    MOVIES_SCHEMA,
    USER_MAPPING_SCHEMA,
)
from rating_prediction.models.config import ModelConfig, build_model
from rating_prediction.models.variants import VARIANTS
from rating_prediction.parameters import parse
from rating_prediction.serving import bundle as serving_bundle
from rating_prediction.serving.artifacts import load_served_model
from rating_prediction.serving.bundle import ServedModel, assemble_served_model
from rating_prediction.serving.ranker import RankerChoice, feedback_of, ranker_variants
from rating_prediction.training.data import TrainingData

GLOBAL_MEAN = 3.5
USER_BIAS = [0.3, -0.2, 0.1, 0.0]
MOVIE_BIAS = [0.5, -0.5, 0.2, 0.1, 0.0]

# A valid `inference` parameter block (as conf/base/parameters_inference.yml has it).
INFERENCE = {
    "served_variant": "best",
    "pairs": [[10, 1], [20, 2], [999, 1]],
    "recommend": {"user_ids": [10, 30], "top_k": 3},
    "fold_in": {"ratings": [[1, 4.5], [3, 2.0]], "regularization": 1.0, "top_k": 2},
    "similar": {"movie_ids": [1], "top_k": 2},
    "batch_recommend": {"top_k": 2, "block_size": 2},
    "request_files": {"batch_size": 3},
}


# The rankers' `training` blocks (`params:training`): EASE with a lambda that suits four
# movies; any other ranker with its defaults.
RANKER_TRAINING = {"ease": {"regularization": 1.0, "feedback": "binary"}}
# The held-out val NDCG@K set in each fitted ranker's config (the fit on these fixtures
# measures none): ease's is the highest, so `best` serves it.
EASE_VAL_NDCG = 0.4


def identity_mappings(n_users: int, n_movies: int) -> dict[str, pl.DataFrame]:
    """``user_mapping`` and ``movie_mapping`` of users and movies numbered from 1,
    mapped to ``id - 1``: the served model's arguments of that name."""
    return {
        "user_mapping": pl.DataFrame(
            {"userId": range(1, n_users + 1), "userIdMapped": range(n_users)},
            schema=USER_MAPPING_SCHEMA,
        ),
        "movie_mapping": pl.DataFrame(
            {"movieId": range(1, n_movies + 1), "movieIdMapped": range(n_movies)},
            schema=MOVIE_MAPPING_SCHEMA,
        ),
    }


def assert_damage_refused_at_load(
    folder: Path, work: Path, case: tuple[str, Callable[[Path], Any], str]
) -> None:
    """A copy of the saved served model ``folder`` (made in ``work``) loads whole, and
    once ``case``'s damage is done to it, is refused naming its part and problem:
    ``case`` is ``(part name, damage, problem pattern)``."""
    name, damage, problem = case
    copied = shutil.copytree(folder, work / "served_model")
    load_served_model(copied)
    damage(copied)
    with pytest.raises(ValueError, match=rf"served model's {name} \(.*\) .*{problem}"):
        load_served_model(copied)


def inference_parameters(**changes: Any) -> dict[str, Any]:
    """A copy of ``INFERENCE`` with ``changes`` applied; a nested block (``recommend``,
    ``fold_in``, ...) takes a dict of the changes to its keys."""
    parameters = copy.deepcopy(INFERENCE)
    for block in (
        "recommend",
        "fold_in",
        "similar",
        "batch_recommend",
        "request_files",
    ):
        if block in changes:
            parameters[block] = parameters.get(block, {}) | changes.pop(block)
    return parameters | changes


def answered(partitions: dict[str, Callable[[], pl.DataFrame]]) -> pl.DataFrame:
    """What a node answering in partitions answers, the partitions in name order (as
    the PartitionedDataset saves them, and a reader of its folder reads them)."""
    return pl.concat([partitions[name]() for name in sorted(partitions)])


def make_ratings(pairs: list[tuple[int, int]]) -> pl.DataFrame:
    """Ratings of 4.0 for (userId, movieId) pairs, mapped as the fixtures map them."""
    rows = [(user, movie, 4.0, 0, user // 10 - 1, movie - 1) for user, movie in pairs]
    return pl.DataFrame(rows, schema=MAPPED_RATINGS_SCHEMA, orient="row")


@pytest.fixture(scope="session")
def user_mapping() -> pl.DataFrame:
    return pl.DataFrame(
        {"userId": [10, 20, 30, 40], "userIdMapped": [0, 1, 2, 3]},
        schema=USER_MAPPING_SCHEMA,
    )


@pytest.fixture(scope="session")
def movie_mapping() -> pl.DataFrame:
    return pl.DataFrame(
        {"movieId": [1, 2, 3, 4, 5], "movieIdMapped": [0, 1, 2, 3, 4]},
        schema=MOVIE_MAPPING_SCHEMA,
    )


@pytest.fixture(scope="session")
def movies() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "movieId": [1, 2, 3, 4, 5, 6],
            "title": [f"Movie {i}" for i in range(1, 7)],
            "genres": ["Drama"] * 6,
        },
        schema=MOVIES_SCHEMA,
    )


@pytest.fixture(scope="session")
def train_ratings() -> pl.DataFrame:
    return make_ratings([(10, 1), (10, 2), (20, 2), (20, 3), (30, 4), (30, 1)])


@pytest.fixture(scope="session")
def val_ratings() -> pl.DataFrame:
    return make_ratings([(40, 1), (10, 3)])


@pytest.fixture(scope="session")
def test_ratings() -> pl.DataFrame:
    return make_ratings([(20, 5)])


@pytest.fixture(scope="session")
def biased_config() -> dict:
    return {
        "variant": "biased_mf",
        "n_users": 4,
        "n_movies": 5,
        "model_kwargs": {"embedding_dim": 3, "global_mean": GLOBAL_MEAN},
        "best_epoch": 1,
        "best_val_loss": 0.8,
    }


@pytest.fixture(scope="session")
def biased_weights(biased_config) -> dict[str, torch.Tensor]:
    """Known biases; random factors; zero parameters for the ids unseen in training."""
    torch.manual_seed(0)
    model = build_model(biased_config)
    with torch.no_grad():
        model.user_factors.weight.normal_(std=0.3)
        model.movie_factors.weight.normal_(std=0.3)
        model.user_bias.weight.copy_(torch.tensor(USER_BIAS).unsqueeze(1))
        model.movie_bias.weight.copy_(torch.tensor(MOVIE_BIAS).unsqueeze(1))
    model.forget_unseen(
        torch.tensor([True, True, True, False]),
        torch.tensor([True, True, True, True, False]),
    )
    return model.state_dict()


@pytest.fixture(scope="session")
def inner_sigmoid_config() -> dict:
    return {
        "variant": "inner_sigmoid",
        "n_users": 4,
        "n_movies": 5,
        "model_kwargs": {"embedding_dim": 3},
        "best_epoch": 1,
        "best_val_loss": 0.9,
    }


@pytest.fixture(scope="session")
def inner_sigmoid_weights(inner_sigmoid_config) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return build_model(inner_sigmoid_config).state_dict()


@pytest.fixture(scope="session")
def served_inputs(user_mapping, movie_mapping, train_ratings, movies) -> dict:
    """The tables a served model is assembled from, as keyword arguments."""
    return {
        "user_mapping": user_mapping,
        "movie_mapping": movie_mapping,
        "train_ratings": train_ratings,
        "movies": movies,
    }


@pytest.fixture(scope="session")
def served(biased_config, biased_weights, served_inputs) -> ServedModel:
    return assemble_served_model(biased_config, biased_weights, **served_inputs)


@pytest.fixture
def model_builds(monkeypatch) -> list[str]:
    """The variants whose torch model is built from its weights while a test runs."""
    built = []
    load_trained_model = serving_bundle.load_trained_model

    def counting_load(config, state_dict):
        built.append(config.variant)
        return load_trained_model(config, state_dict)

    monkeypatch.setattr(serving_bundle, "load_trained_model", counting_load)
    return built


@pytest.fixture(scope="session")
def trained_rankers(train_ratings, val_ratings) -> dict[str, tuple[dict, dict]]:
    """(config, weights) of every ranker of VARIANTS, fitted on the train split by its
    own fit function (``RANKER_TRAINING``), its ``best_val_ndcg`` set by hand: ease's
    the highest, the others' lower in registry order."""
    data = TrainingData(train=train_ratings, val=val_ratings, n_users=4, n_movies=5)
    trained = {}
    for place, name in enumerate(ranker_variants()):
        entry = VARIANTS[name]
        options = parse(
            entry.parameters, RANKER_TRAINING.get(name, {}), f"training.{name}"
        )
        weights, config, _ = entry.fit_function()(name, options, data)
        ndcg = EASE_VAL_NDCG if name == "ease" else EASE_VAL_NDCG / (2 + place)
        trained[name] = (config.model_dump() | {"best_val_ndcg": ndcg}, weights)
    return trained


def ranker_choice(trained_rankers: dict, name: str = "ease") -> RankerChoice:
    """The ``name`` ranker of ``trained_rankers`` as the pipeline chooses it."""
    config, weights = trained_rankers[name]
    return RankerChoice(
        ModelConfig.model_validate(config),
        weights,
        feedback_of(name, RANKER_TRAINING),
    )


@pytest.fixture(scope="session")
def ranked_served(
    biased_config, biased_weights, served_inputs, val_ratings, trained_rankers
) -> ServedModel:
    """``served`` with the ease ranker answering recommend, fold-in and similar."""
    return assemble_served_model(
        biased_config,
        biased_weights,
        **served_inputs,
        val_ratings=val_ratings,
        ranker=ranker_choice(trained_rankers),
    )


@pytest.fixture(scope="session")
def trained_by_variant(
    inner_sigmoid_config,
    inner_sigmoid_weights,
    biased_config,
    biased_weights,
    trained_rankers,
) -> dict[str, tuple[dict, dict]]:
    """(config, weights) of every variant of VARIANTS (the ones the inference pipeline
    may serve: the rating models and the rankers). A rating variant other than the two
    hand-set ones reuses the one of its model class, with a worse val loss, so ``best``
    stays biased_mf; the rankers are ``trained_rankers`` (``best``: ease)."""
    hand_set = {
        "inner_sigmoid": (inner_sigmoid_config, inner_sigmoid_weights),
        "biased_mf": (biased_config, biased_weights),
    }
    trained = dict(trained_rankers)
    for variant, entry in VARIANTS.items():
        if not entry.predicts_ratings:
            continue
        if variant in hand_set:
            trained[variant] = hand_set[variant]
            continue
        config, weights = next(
            pair
            for name, pair in hand_set.items()
            if VARIANTS[name].model_class is entry.model_class
        )
        trained[variant] = (
            config | {"variant": variant, "best_val_loss": 1.5},
            weights,
        )
    return trained


# The same model with string ids: user 10 is "u10", movie 1 is "m1". The string order
# ("u10" < "u20" < ..., "m1" < ... < "m5") is the integer order, so every index, and
# every answer, is the integer model's with its ids renamed.
def user_string(user: int) -> str:
    return f"u{user}"


def movie_string(movie: int) -> str:
    return f"m{movie}"


def with_string_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its userId and movieId columns (those it has) as strings."""
    renamed = {"userId": "u", "movieId": "m"}
    return frame.with_columns(
        pl.format(f"{prefix}{{}}", pl.col(column)).alias(column)
        for column, prefix in renamed.items()
        if column in frame.columns
    )


@pytest.fixture(scope="session")
def string_served_inputs(served_inputs) -> dict:
    """``served_inputs`` with String userIds and movieIds (as ingestion gives them for
    a ratings file whose ids are strings)."""
    return {name: with_string_ids(frame) for name, frame in served_inputs.items()}


@pytest.fixture(scope="session")
def string_served(biased_config, biased_weights, string_served_inputs) -> ServedModel:
    return assemble_served_model(biased_config, biased_weights, **string_served_inputs)
