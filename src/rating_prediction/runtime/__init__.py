"""What keeps a run honest and readable, independent of any model: complete-or-absent
writes, lineage, the run lock and run status, redaction of what is recorded, MLflow
tracking, the console and the progress of long steps.

- :mod:`.atomic`: writes to a partial sibling, then a rename;
- :mod:`.lineage`: fingerprints and ancestry of every file output, the stale check;
- :mod:`.run_guard`: one ``kedro run`` at a time, partial-file cleanup, FAILED and KILLED
  MLflow runs;
- :mod:`.redaction`: URLs without credentials, paths made relative or hidden;
- :mod:`.tracking`: kedro-mlflow's hook, recording no absolute path or URL credential;
- :mod:`.console`: what a run prints, and what only the file log keeps;
- :mod:`.progress`: long steps' progress, with an estimate of the time left;
- :mod:`.library_warnings`: the few warnings libraries raise about each other, ignored
  narrowly;
- :mod:`.environment`: the run's configuration environment, for the pipeline registry;
- :mod:`.spark`: the Spark session of ``--env spark``, and the checks that stop a run
  when Spark cannot start.
"""
