"""What predicts and ranks: the rating models, the baselines, the one scoring and top-K
kernel, and the variant registry.

- :mod:`.factorization`: the rating models (``nn.Module``);
- :mod:`.rankers`: the rankers, whose scores order movies but are not ratings (EASE^R,
  implicit ALS and BPR), and their fold-in of a new user and similar movies;
- :mod:`.config`: ``ModelConfig``, the format of a trained model's ``config.json``, and
  the model it rebuilds;
- :mod:`.baselines`: the mean and bias baselines;
- :mod:`.scoring`: the kernel every score goes through: score matrices for blocks of
  users, pair scoring, top-K with ties to the lower movie index, the popularity blend,
  similar movies;
- :mod:`.variants`: the variant registry: each variant's model class, parameter model,
  fit function and capabilities.
"""
