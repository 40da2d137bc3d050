"""Serving: the served model and everything it answers, in original ids.

- :mod:`.bundle`: the served model (:class:`~.bundle.ServedModel`: the rating model that
  answers ``predict``, the ranker that answers the rest) and the choice of variant;
- :mod:`.ranker`: the choice of the served ranker and how it reads a new user's ratings;
- :mod:`.request_ids`: every id a request brings, checked;
- :mod:`.prediction`: pair predictions;
- :mod:`.recommend`: the one top-K path, for a few users or all, with or without the
  popularity blend, for known or folded-in users;
- :mod:`.foldin`: new users from their own ratings, without retraining;
- :mod:`.similar`: movies like a given one;
- :mod:`.rated`: the movies each user rated, never recommended to them;
- :mod:`.artifacts`: the served model as a folder of safetensors, parquet and JSON (no
  pickle);
- :mod:`.requests`, :mod:`.pyfunc`: the MLflow model's requests and pyfunc;
- :mod:`.registry`: registered model versions, their integrity tags and the
  ``champion`` alias;
- :mod:`.verify`: the verified loader and ``verify-and-serve``: every file checked
  against the registry's manifest before any of it runs;
- :mod:`.asgi`: the server ``verify-and-serve`` runs: MLflow's scoring app, its own
  error answers kept short;
- :mod:`.request_files`: request files, checked and read in batches.

Every score comes from the scoring kernel, :mod:`rating_prediction.models.scoring`.
"""
