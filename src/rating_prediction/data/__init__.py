"""The data contracts and the id and split machinery every layer shares.

- :mod:`.schema`: table schemas, split names, the default rating scale, genre
  vocabularies, the id bound;
- :mod:`.ids`: original id <-> 0-based index, ``-1`` for unknown, the one "seen in
  training" mask;
- :mod:`.splitting`: which split each rating goes to (random, temporal, K-fold, a
  release's own folds, a seeded hash), one dispatcher for processing and
  cross-validation;
- :mod:`.spark_processing`: the top-N filter, the id mappings and the hash and temporal
  splits on Spark DataFrames (``--env spark``), the same as one machine's.
"""
