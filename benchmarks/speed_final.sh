#!/usr/bin/env bash
# Every figure of benchmarks/speed.md's "Predict, I3D and loader memory" section in one go (about
# 8 minutes on 2 idle cores): the CPU and load, `vidcls benchmark` once on the code before the
# change (BASE) and three times on this checkout, then I3D's forward and answers in float32 and
# bf16. Run from the repository root; writes bench/final/.
#
#     bash benchmarks/speed_final.sh [BASE_COMMIT] [UCF101_FOLDER] [CRICKET_GIF]
set -euo pipefail
BASE=${1:-163ffc7}
UCF=${2:-../../data/data/UCF-101}
GIF=${3:-../../shared/reference/v_CricketShot_g04_c01_rgb.gif}
OUT=bench/final
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"

lscpu | grep -E "Model name|Flags" | grep -o "Model name.*\|avx512_bf16\|amx_tile\|avx512f\|avx2" | sort -u | tee "$OUT/cpu.txt"
cat /proc/loadavg | tee -a "$OUT/cpu.txt"

if [ ! -d bench/data ]; then  # the benchmark's files: 72 clips of 320x240 MPEG-4 AVI, lengthened to 175 frames
  PYTHONPATH=$PWD/src $PY -m vidcls.cli sample bench/data --per-class 12
  PYTHONPATH=$PWD/src $PY benchmarks/lengthen_videos.py bench/data --frames 175
fi

# Before: the code at BASE, on the same files, in the same session.
rm -rf "$OUT/base" && mkdir -p "$OUT/base" && git archive "$BASE" src | tar -x -C "$OUT/base"
echo "load $(cut -d' ' -f1-3 /proc/loadavg): benchmark at $BASE" >&2
PYTHONPATH=$PWD/$OUT/base/src $PY -m vidcls.cli benchmark bench/data --json "$OUT/before.json" > /dev/null

# After: three runs in a row (the loader's spread, predict against the pipeline, memory).
for i in 1 2 3; do
  echo "load $(cut -d' ' -f1-3 /proc/loadavg): benchmark run $i" >&2
  PYTHONPATH=$PWD/src $PY -m vidcls.cli benchmark bench/data --json "$OUT/after-$i.json" > /dev/null
done
PYTHONPATH=$PWD/src $PY benchmarks/summarize_runs.py "$OUT"/after-*.json | tee "$OUT/summary.txt"

# I3D: forward per clip (float32, bf16, onnxruntime) at 16 x 160 and 64 x 224, and the answers.
PYTHONPATH=$PWD/src $PY benchmarks/i3d_cpu.py --settings 16x160 64x224 --rounds 3 --onnx \
  --gif "$GIF" --videos "$UCF" --count 12 > "$OUT/i3d.json"

# One table of everything above.
PYTHONPATH=$PWD/src $PY - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
runs = {"before": json.loads((out / "before.json").read_text())}
runs.update({p.stem: json.loads(p.read_text()) for p in sorted(out.glob("after-*.json"))})
print("| run | load | loader clips/s (windows) | loader RSS / PSS MB | predict ms (x pipeline) | onnx ms (x) | pipeline ms | top-1 agree |")
print("|---|---|---|---|---|---|---|---|")
for name, r in runs.items():
    loader, pred = r["loader"], r["prediction"]
    windows = loader.get("window_clips_per_s", [])
    spread = f"{min(windows):.0f}-{max(windows):.0f}" if windows else "-"
    pss = loader.get("peak_pss_mb_all_processes", "-")
    onnx = pred.get("predict_onnx", {})
    print(f"| {name} | {r['load_average']['before'][0]:.1f} | {loader['clips_per_s']:.1f} ({spread}) | "
          f"{loader['peak_rss_mb_all_processes']:.0f} / {pss} | {pred['predict']['ms_per_video']:.1f} "
          f"({pred['predict']['speedup_vs_pipeline']:.2f}) | {onnx.get('ms_per_video', float('nan')):.1f} "
          f"({onnx.get('speedup_vs_pipeline', float('nan')):.2f}) | {pred['pipeline']['ms_per_video']:.1f} | "
          f"{pred['predict']['top1_agree']:.2f} |")
i3d = json.loads((out / "i3d.json").read_text())
for setting, ways in i3d["timings"].items():
    for way, t in ways.items():
        print(f"I3D {setting} {way}: wall {t['wall_s']:.2f} s, CPU {t['cpu_s']:.2f} s, per round vs fp32 {t['wall_vs_fp32_per_round']}")
print("cricket", i3d.get("cricket"))
print({k: v for k, v in i3d.get("real_clips", {}).items() if k != "rows"})
EOF
cat /proc/loadavg
