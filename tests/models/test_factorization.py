"""The rating models: shapes, output range, fallbacks for unknown ids."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from rating_prediction.data.ids import seen_mask
from rating_prediction.models.config import ModelConfig, build_model, load_trained_model
from rating_prediction.models.factorization import (
    BiasedMatrixFactorization,
    InnerSigmoidModel,
)
from rating_prediction.models.variants import VARIANTS


def test_inner_sigmoid_is_the_notebooks_architecture():
    model = InnerSigmoidModel(7, 4, embedding_dim=5)
    assert model.user_embedding.weight.shape == (7, 5)
    assert model.movie_embedding.weight.shape == (4, 5)
    assert isinstance(model.linear, torch.nn.Linear)
    assert model.linear.weight.shape == (1, 1)


def test_forward_returns_one_rating_per_pair():
    users, movies = torch.tensor([0, 1, 6]), torch.tensor([3, 0, 2])
    for model in (InnerSigmoidModel(7, 4), BiasedMatrixFactorization(7, 4)):
        assert model(users, movies).shape == (3,)


def test_inner_sigmoid_output_stays_in_rating_range_even_with_huge_weights():
    model = InnerSigmoidModel(3, 3, rating_min=0.5, rating_max=5.0)
    with torch.no_grad():
        model.user_embedding.weight.fill_(100.0)
        model.movie_embedding.weight[0].fill_(100.0)
        model.movie_embedding.weight[1].fill_(-100.0)
    ratings = model(torch.tensor([0, 0]), torch.tensor([0, 1]))
    assert ratings.min() >= 0.5
    assert ratings.max() <= 5.0


def test_untrained_inner_sigmoid_predicts_the_training_mean():
    model = InnerSigmoidModel(50, 20, global_mean=3.7, init_std=0.0)
    ratings = model(torch.arange(20), torch.arange(20))
    assert torch.allclose(ratings, torch.full((20,), 3.7), atol=1e-5)


def test_biased_mf_prediction_is_mean_plus_biases_plus_dot_and_is_clipped():
    model = BiasedMatrixFactorization(2, 2, embedding_dim=1, global_mean=3.0)
    with torch.no_grad():
        model.user_bias.weight[:] = torch.tensor([[0.5], [3.0]])
        model.movie_bias.weight[:] = torch.tensor([[-0.25], [1.0]])
        model.user_factors.weight[:] = torch.tensor([[2.0], [0.0]])
        model.movie_factors.weight[:] = torch.tensor([[0.1], [0.0]])
    raw = model(torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert raw.tolist() == pytest.approx([3.0 + 0.5 - 0.25 + 0.2, 7.0])
    assert model.predict(torch.tensor([0, 1]), torch.tensor([0, 1])).tolist() == (
        pytest.approx([3.45, 5.0])
    )


def test_negative_ids_fall_back_to_the_known_side():
    model = BiasedMatrixFactorization(2, 2, embedding_dim=1, global_mean=3.0)
    with torch.no_grad():
        model.user_bias.weight[:] = 0.5
        model.movie_bias.weight[:] = -0.25
        model.user_factors.weight[:] = 1.0
        model.movie_factors.weight[:] = 1.0
    prediction = model.predict(torch.tensor([-1, 0, -1]), torch.tensor([0, -1, -1]))
    assert prediction.tolist() == pytest.approx([2.75, 3.5, 3.0])


def test_inner_sigmoid_unknown_ids_give_the_sigmoid_of_the_bias():
    model = InnerSigmoidModel(3, 3, global_mean=3.2)
    with torch.no_grad():
        model.linear.weight.fill_(2.0)
    prediction = model.predict(torch.tensor([-1, 1]), torch.tensor([0, -1]))
    assert prediction.tolist() == pytest.approx([3.2, 3.2], abs=1e-5)


def test_forget_unseen_zeroes_only_unseen_rows():
    model = BiasedMatrixFactorization(3, 2, embedding_dim=2, init_std=1.0)
    with torch.no_grad():
        model.user_bias.weight.fill_(1.0)
    model.forget_unseen(torch.tensor([True, False, True]), torch.tensor([False, True]))
    assert model.user_factors.weight[1].abs().sum() == 0
    assert model.user_bias.weight[1].item() == 0
    assert model.user_bias.weight[0].item() == 1.0
    assert model.movie_factors.weight[0].abs().sum() == 0
    assert model.movie_factors.weight[1].abs().sum() > 0


def test_forget_unseen_takes_the_seen_masks_of_the_training_ids():
    # As training builds them: seen_mask over the training split's mapped ids.
    model = InnerSigmoidModel(4, 3, embedding_dim=2, init_std=1.0)
    seen_users = torch.from_numpy(seen_mask(np.array([0, 2, 2]), 4))
    seen_movies = torch.from_numpy(seen_mask(np.array([1]), 3))
    model.forget_unseen(seen_users, seen_movies)
    user_rows = model.user_embedding.weight.abs().sum(1)
    movie_rows = model.movie_embedding.weight.abs().sum(1)
    assert (user_rows > 0).tolist() == [True, False, True, False]
    assert (movie_rows > 0).tolist() == [False, True, False]


def test_regularization_penalises_the_batch_rows():
    model = BiasedMatrixFactorization(
        2, 2, embedding_dim=1, factor_reg=0.5, bias_reg=0.1
    )
    with torch.no_grad():
        model.user_factors.weight[:] = 2.0
        model.movie_factors.weight[:] = 1.0
        model.user_bias.weight[:] = 1.0
        model.movie_bias.weight[:] = 0.0
    penalty = model.regularization(torch.tensor([0]), torch.tensor([1]))
    assert penalty.item() == pytest.approx(0.5 * (4 + 1) + 0.1 * 1)


def test_one_lookup_gives_the_predictions_penalty_and_gradients_of_two():
    torch.manual_seed(0)
    model = BiasedMatrixFactorization(
        5, 4, embedding_dim=3, factor_reg=0.3, bias_reg=0.2, init_std=0.5
    )
    users, movies = torch.tensor([0, 2, 2, 4]), torch.tensor([1, 1, 3, 0])
    target = torch.tensor([4.0, 3.0, 1.5, 5.0])
    gradients = []
    for combined in (False, True):
        model.zero_grad()
        if combined:
            predictions, penalty = model.forward_and_penalty(users, movies)
        else:
            predictions = model(users, movies)
            penalty = model.regularization(users, movies)
        ((predictions - target) ** 2).mean().add(penalty).backward()
        gradients.append([p.grad.clone() for p in model.parameters()])
        if combined:
            assert torch.equal(predictions, model(users, movies))
            assert penalty == model.regularization(users, movies)
    for separate, combined in zip(*gradients):
        assert separate.abs().sum() > 0
        torch.testing.assert_close(combined, separate, rtol=1e-6, atol=1e-7)


def test_build_model_rejects_unknown_variants():
    with pytest.raises(ValueError, match="valid variants: inner_sigmoid, biased_mf"):
        build_model({"variant": "svd", "n_users": 2, "n_movies": 2, "model_kwargs": {}})


def test_load_trained_model_round_trips_weights():
    config = {
        "variant": "biased_mf",
        "n_users": 5,
        "n_movies": 3,
        "model_kwargs": {"embedding_dim": 4, "global_mean": 3.3},
    }
    trained = build_model(config)
    loaded = load_trained_model(config, trained.state_dict())
    users, movies = torch.tensor([0, 4]), torch.tensor([2, 1])
    assert not loaded.training
    assert torch.equal(loaded.predict(users, movies), trained.predict(users, movies))


def test_build_model_takes_the_model_config_training_writes():
    config = ModelConfig(
        variant="inner_sigmoid",
        n_users=6,
        n_movies=4,
        model_kwargs={"embedding_dim": 3, "sparse": True, "global_mean": 3.5},
        best_epoch=2,
        best_val_loss=0.8,
    )
    model = build_model(config)
    assert model.user_embedding.weight.shape == (6, 3)
    assert model.movie_embedding.sparse
    # config.json holds config.model_dump(): the same model comes back from it.
    assert ModelConfig.model_validate(config.model_dump()) == config
    assert build_model(config.model_dump()).user_embedding.weight.shape == (6, 3)


def test_model_config_rejects_unknown_keys():
    with pytest.raises(ValidationError, match="best_epochs"):
        ModelConfig.model_validate(
            {
                "variant": "biased_mf",
                "n_users": 2,
                "n_movies": 2,
                "model_kwargs": {},
                "best_epochs": 3,
            }
        )


@pytest.mark.parametrize("variant", ["inner_sigmoid", "biased_mf"])
def test_predict_all_movies_is_predict_of_every_pair(variant):
    model = VARIANTS[variant].model_class(30, 12, embedding_dim=4, init_std=0.5)
    users = torch.tensor([0, 7, -1, 29])  # -1: unknown, the fallback's row
    matrix = model.predict_all_movies(users, 12)
    pairs = model.predict(users.repeat_interleave(12), torch.arange(12).repeat(4))
    torch.testing.assert_close(matrix, pairs.reshape(4, 12), rtol=1e-6, atol=1e-6)
