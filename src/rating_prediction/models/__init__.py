"""What predicts and ranks: the rating models, the baselines, the one scoring and top-K
kernel, and the variant registry.

- :mod:`.factorization`: the rating models (``nn.Module``) and ``ModelConfig``, the format
  of a trained model's ``config.json``;
- :mod:`.baselines`: the mean and bias baselines;
- :mod:`.scoring`: the kernel every score goes through: score matrices for blocks of
  users, pair scoring, top-K with ties to the lower movie index, the popularity blend.
"""
