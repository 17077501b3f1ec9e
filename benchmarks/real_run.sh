#!/usr/bin/env bash
# The figures of benchmarks/real.md for one data set, through the commands a user runs:
#
#   bash benchmarks/real_run.sh DATA OUT [TRAIN_ARGS...]
#
# `vidcls train DATA -o OUT/model` (at defaults unless TRAIN_ARGS), timed; then
# benchmarks/pipeline_parity.py (`vidcls eval`'s top-1 at its default views, timed, and the guide's
# `pipeline("video-classification", model=OUT/model)` on every test video); then `vidcls predict` at
# its defaults on every test video in one call, and on one video alone (start-up: Python, torch, the
# model), timed. Writes OUT/train.log, OUT/parity.json, OUT/predict.txt and OUT/times.txt (wall seconds and the load average before each
# step). Run it from the repository root with the package importable (PYTHONPATH=src).
set -euo pipefail
data=$1 out=$2
shift 2
python=${PYTHON:-python}
mkdir -p "$out"
[ -e "$out/model" ] && { echo "$out/model exists: not overwritten" >&2; exit 1; }
times=$out/times.txt
step() {  # step NAME COMMAND...: runs it, appends "NAME seconds load-before" to times.txt
  local name=$1 load start
  shift
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  start=$(date +%s.%N)
  "$@"
  echo "$name $(echo "$(date +%s.%N) - $start" | bc) load $load" >> "$times"
}
step train "$python" -m vidcls.cli train "$data" -o "$out/model" "$@" > "$out/train.log" 2>&1
step parity "$python" benchmarks/pipeline_parity.py "$out/model" "$data" --json "$out/parity.json" > /dev/null
mapfile -t videos < <(find -L "$data/test" -type f | sort)
step "predict${#videos[@]}" "$python" -m vidcls.cli predict "$out/model" "${videos[@]}" > "$out/predict.txt"
step predict1 "$python" -m vidcls.cli predict "$out/model" "${videos[0]}" > /dev/null
cat "$times"
