#!/usr/bin/env bash
# The main job on the embedded default: make the synthetic dataset, train the tiny model,
# evaluate it on the test split and predict one file. Extra arguments go to `vidcls demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vidcls demo "$@"
