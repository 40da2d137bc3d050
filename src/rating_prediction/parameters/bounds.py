"""The largest value each kind of size may take, defined once for every parameter model
(and for the serving edge, which checks its requests with the same bounds).

A size without a ceiling lets one typo (``max_epochs=1e12``, ``top_k=10000000``) reach
code that allocates or loops in proportion to it, far from the key that caused it. Each
bound below is generous: well above any real use, yet small enough that the work it
allows finishes on one machine. A value above one is refused naming its key, before any
node runs.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

from rating_prediction.data.schema import MAX_ID

# Early stopping ends the project's fits within tens of epochs; 100,000 epochs of the
# smallest release (about a second each on a CPU) would run for more than a day.
MAX_EPOCHS = 100_000
# Gibbs samples (bayesian_fm), ALS/BPR iterations: as epochs, each a pass over the
# ratings; the published settings use tens to a few hundred.
MAX_ITERATIONS = 100_000
# Factors of a model (embedding_dim, rank, factors): published MF, ALS and FM models
# use tens to hundreds; 4,096 factors of MovieLens 32M's 288,000 users and movies are
# already 4.7 GB of float32.
MAX_FACTORS = 4_096
# Rows per batch (training, evaluation, request files), and counts of batches: more
# than the Netflix Prize's 100,480,507 ratings, the largest data set the project runs,
# so a batch may hold a whole data set and never more batches than ratings are asked for.
MAX_BATCH = 2**27
# Users scored at once by batch recommendations: each block scores block_size x every
# movie, and 16,384 users x MovieLens 32M's 87,585 movies are 5.7 GB of float32 scores.
MAX_BLOCK_USERS = 16_384
# Length of a recommendation list (top_k, evaluation's K): past 1,000 movies a list is
# no longer a recommendation, and batch recommendations write users x top_k rows.
MAX_TOP_K = 1_000
# Caps on how many users, movies or ratings to keep or sample: no data set holds more
# users or movies than there are ids (Int32 from ingestion on), nor more ratings than
# polars holds in one frame (2^32 - 1 rows without its 64-bit-index build).
MAX_ENTITIES = MAX_ID
MAX_ROWS = 2**32 - 1
# The synthetic sample's shape: 20 times the Netflix Prize's 480,189 users and 500
# times its 17,770 movies; 10 times its ratings (about 16 GB in memory at ingestion).
MAX_SYNTHETIC_USERS = 10_000_000
MAX_SYNTHETIC_MOVIES = 10_000_000
MAX_SYNTHETIC_RATINGS = 1_000_000_000
# Unix seconds before 2100-01-01: the Int64 timestamp column holds them, and a later
# date in a synthetic sample is a typo.
MAX_TIMESTAMP = 4_102_444_800
# numpy's legacy RandomState and Lightning's seed_everything take seeds in 0..2^32 - 1
# (Lightning raises on a larger one); every seed of the project fits them all.
MAX_SEED = 2**32 - 1
# CPU threads of a fit (implicit's num_threads): each is an OS thread; no machine the
# project runs on has more than a few hundred cores.
MAX_THREADS = 1_024
# Folds of cross-validation (each trains every variant once), Optuna trials (each a
# full fit and a nested MLflow run), bars of the popularity figure.
MAX_FOLDS = 100
MAX_TRIALS = 10_000
MAX_BUCKETS = 1_000
# Days per time bucket of bayesian_fm's time feature: a bucket wider than a century
# holds every rating of every release.
MAX_BUCKET_DAYS = 36_500
# Training processes per node (trainer.devices: GPUs, or CPU processes) and nodes:
# the largest nodes hold 8 to 16 GPUs, the largest clusters a few thousand nodes.
MAX_DEVICES = 1_024
MAX_NODES = 10_000

Epochs = Annotated[StrictInt, Field(ge=1, le=MAX_EPOCHS)]
NonNegativeEpochs = Annotated[StrictInt, Field(ge=0, le=MAX_EPOCHS)]
Iterations = Annotated[StrictInt, Field(ge=1, le=MAX_ITERATIONS)]
Factors = Annotated[StrictInt, Field(ge=1, le=MAX_FACTORS)]
BatchSize = Annotated[StrictInt, Field(ge=1, le=MAX_BATCH)]
Batches = Annotated[StrictInt, Field(ge=1, le=MAX_BATCH)]
RefreshRate = Annotated[StrictInt, Field(ge=0, le=MAX_BATCH)]
BlockUsers = Annotated[StrictInt, Field(ge=1, le=MAX_BLOCK_USERS)]
TopK = Annotated[StrictInt, Field(ge=1, le=MAX_TOP_K)]
EntityCap = Annotated[StrictInt, Field(ge=1, le=MAX_ENTITIES)]
RowCap = Annotated[StrictInt, Field(ge=1, le=MAX_ROWS)]
Timestamp = Annotated[StrictInt, Field(ge=0, le=MAX_TIMESTAMP)]
Seed = Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]
BucketDays = Annotated[StrictInt, Field(ge=1, le=MAX_BUCKET_DAYS)]
Threads = Annotated[StrictInt, Field(ge=0, le=MAX_THREADS)]
Trials = Annotated[StrictInt, Field(ge=1, le=MAX_TRIALS)]
Buckets = Annotated[StrictInt, Field(ge=1, le=MAX_BUCKETS)]
Nodes = Annotated[StrictInt, Field(ge=1, le=MAX_NODES)]
