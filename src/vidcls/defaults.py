"""Defaults of the jobs that the CLI and the library share, defined once and torch-free, so a
command's `--help` shows the value the library uses without loading torch. Training's settings
live in `training.config.TrainConfig`, a clip's in `data.clip_spec.ClipSpec`."""

TOP_K = 5  # labels returned per video, as transformers' pipeline
# The most videos per forward in `vidcls predict`: each forward takes the next video and those
# already decoded behind it (`inference.prediction`), so the first forward does not wait for a
# whole batch and batches fill up when the model is the slower stage. 48 files, `tiny`, 2 cores:
# 8 is 10% faster than 4, 16 no faster than 8 (benchmarks/speed.md). A GPU wants more (--batch-size).
PREDICT_BATCH_SIZE = 8
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
