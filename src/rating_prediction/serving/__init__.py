"""Serving: the served model and everything it answers.

- :mod:`.model`: the bundle (:class:`ServedModel`), id validation and lookup, pair
  predictions, top-K for a few users.
- :mod:`.artifacts`: the bundle as a folder of safetensors, parquet and JSON (no pickle).
- :mod:`.scores`, :mod:`.recommend_all`: score matrices and top-K for all users in blocks.
- :mod:`.foldin`: new users from their own ratings, without retraining.
- :mod:`.similar`: movies like a given one (cosine similarity of movie factors).
- :mod:`.requests`, :mod:`.pyfunc`: the MLflow model's requests and pyfunc.
- :mod:`.registry`: registered model versions and the ``champion`` alias.
"""
