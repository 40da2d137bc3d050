"""Fitting the model variants, independent of Kedro.

- :mod:`.data`: :class:`~.data.TrainingData`, what every fit function reads;
- :mod:`.feeding`: ratings as tensors, batches, the DataModule;
- :mod:`.module`: the LightningModule and its optimizers;
- :mod:`.callbacks`: early stopping and the loss history;
- :mod:`.trainer`: the one ``Trainer`` configuration;
- :mod:`.mlflow_logger`: logging into kedro-mlflow's run;
- :mod:`.fit`: training one Lightning variant, end to end;
- :mod:`.bayesian_fm`: myFM's Gibbs-sampled Bayesian FM, exported as a biased MF
  (the package: features, sampling, export);
- :mod:`.feedback`: implicit feedback from the training ratings, and the one-row fit
  log, shared by the rankers;
- :mod:`.ease`: EASE^R's closed form on implicit feedback (a ranker);
- :mod:`.implicit_rankers`: implicit ALS and BPR, fitted by benfred's ``implicit``
  library (rankers);
- :mod:`.tuning`: the Optuna search on the val split.
"""
