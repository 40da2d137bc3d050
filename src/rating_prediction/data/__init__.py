"""The data contracts and the id and split machinery every layer shares.

- :mod:`.schema`: table schemas, split names, the default rating scale, genre
  vocabularies, the id bound;
- :mod:`.ids`: original id <-> 0-based index, ``-1`` for unknown, the one "seen in
  training" mask;
- :mod:`.splitting`: which split each rating goes to (random, temporal, K-fold, a
  release's own folds), one dispatcher for processing and cross-validation.
"""
