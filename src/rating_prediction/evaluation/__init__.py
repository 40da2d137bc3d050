"""How good a model is: error metrics, ranking metrics, cross-validation over folds,
intervals and paired tests, and the names of entries and metrics.

- :mod:`.names`: entry and metric names: which metrics rank (higher is better), the
  MLflow spelling of a name and ``metrics.json`` flattened into MLflow keys;
- :mod:`.metrics`: MSE, RMSE, MAE (also summed batch by batch), RMSE per group;
- :mod:`.ranking`: top-K metrics (NDCG, precision, recall, MAP, coverage) in blocks of
  users, and the popularity and random baselines;
- :mod:`.cross_validation`: every variant and baseline over K folds, and the summary;
- :mod:`.intervals`: mean, sd, t-intervals and paired t-tests over folds.
"""
