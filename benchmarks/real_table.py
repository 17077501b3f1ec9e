"""The final table of benchmarks/real.md from the folders benchmarks/real_run.sh wrote.

    python benchmarks/real_table.py OUT [OUT ...]

Reads each OUT's times.txt, parity.json and train.log; prints one Markdown row per OUT ("pending"
when its run has not finished). Predict's cost a video is the all-test-videos call less the one-video
call (start-up and one video), over the other videos.
"""

import json
import re
import sys
from pathlib import Path
print("| data | test videos | recipe kept (train log) | `vidcls eval` top-1 (default views) | eval top-1, 1 clip | pipeline top-1 | training min | eval min | pipeline s/video | predict s/video (all test videos in one call; start-up excluded) | predict start-up s | load at train |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in sys.argv[1:]:
    d = Path(name)
    if not (d / "parity.json").is_file():
        print(f"| {d.name} | pending |"); continue
    p = json.loads((d / "parity.json").read_text())
    t = {l.split()[0]: (float(l.split()[1]), " ".join(l.split()[3:])) for l in (d / "times.txt").read_text().splitlines()}
    log = (d / "train.log").read_text()
    head = re.search(r"head: (.*)", log); kept = re.search(r"recipe search: kept ([^:]*)", log)
    startup = t["predict1"][0]  # one video: Python, torch and the model, and that video
    pred = (t[f"predict{p['eval_videos']}"][0] - startup) / (p["eval_videos"] - 1)
    print(f"| {d.name} | {p['eval_videos']} | {kept.group(1) if kept else '?'}; {head.group(1) if head else ''} | {p['eval_top1']:.3f} ({p['eval_views']}) | "
          f"{p['eval_top1_one_clip']:.3f} | {p['pipeline_top1']:.3f} | {t['train'][0]/60:.1f} | {p['eval_seconds']/60:.2f} | "
          f"{p['pipeline_seconds']/p['pipeline_videos']:.2f} | {pred:.2f} | {startup:.1f} | {t['train'][1]} |")
