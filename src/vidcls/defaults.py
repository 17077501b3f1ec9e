"""Defaults of the jobs that the CLI and the library share, defined once and torch-free, so a
command's `--help` shows the value the library uses without loading torch. Training's settings
live in `training.config.TrainConfig`, a clip's in `data.clip_spec.ClipSpec`."""

TOP_K = 5  # labels returned per video, as transformers' pipeline
# Videos per forward in `vidcls predict`. On the CPU a forward costs about the same per video
# whatever the batch; a small batch keeps short the stretches where one stage waits for the
# other (the first forward waits for a batch to be decoded, the last has nothing left to
# decode). A GPU wants more (--batch-size).
PREDICT_BATCH_SIZE = 4
EVAL_BATCH_SIZE = 8  # videos per forward in `vidcls eval`
RAY_SCORE_BATCH = 8  # videos per forward in a Ray model actor
RAY_PART_SIZE = 256  # rows per Parquet part of a Ray run: what a kill can cost at most
SERVE_MAX_UPLOAD_MB = 200.0  # the largest upload `vidcls serve` accepts
SERVE_MAX_BATCH = 8  # requests scored in one forward by the server
SERVE_BATCH_WAIT_MS = 2.0  # how long the server waits for more requests after the first
# `vidcls audit --label-issues`: out-of-fold folds, the recipes a fold can train, and a `motion` fold's steps.
LABEL_FOLDS = 3
LABEL_FOLD_RECIPES = ("pretrained", "signature", "motion")
LABEL_FOLD_STEPS = 600
