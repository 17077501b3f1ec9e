"""Score a trained model two ways on one split: `vidcls eval` and transformers' pipeline called as
the guide calls it, `pipeline("video-classification", model=DIR)(path)` with no sampling arguments.

    python benchmarks/pipeline_parity.py MODEL_DIR DATA [--split test] [--json out.json]

Prints one JSON object: eval top-1 (its default views), eval top-1 with one clip, pipeline top-1,
how many videos each scored, and the seconds each took. Both score the readable videos of the
split (the pipeline crashes on the empty or truncated files vidcls names and leaves out); a video
the pipeline still fails on counts as wrong for it and is listed. A model saved with its own modeling code (the `motion` preset) is loaded with
``trust_remote_code=True``, the one argument such a model needs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pipeline_top1(model_dir: Path, records) -> dict:
    from transformers import pipeline

    remote = (model_dir / "config.json").is_file() and "auto_map" in json.loads((model_dir / "config.json").read_text())
    classify = pipeline("video-classification", model=str(model_dir), **({"trust_remote_code": True} if remote else {}))
    correct, failed, start = 0, [], time.perf_counter()
    for record in records:
        try:
            correct += classify(str(record.path))[0]["label"] == record.label
        except Exception as error:  # the pipeline's own failures are what a user meets
            failed.append({"path": str(record.path), "error": f"{type(error).__name__}: {error}"[:200]})
    return {
        "pipeline_top1": correct / len(records), "pipeline_videos": len(records), "pipeline_failed": failed,
        "pipeline_seconds": time.perf_counter() - start, "pipeline_processor": type(classify.video_processor).__name__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from vidcls.evaluation.evaluate import evaluate
    from vidcls.inference.options import ViewOptions

    start = time.perf_counter()
    report = evaluate(args.model, args.data, split=args.split)
    seconds = time.perf_counter() - start
    one_clip = evaluate(args.model, args.data, ViewOptions(clips=1), split=args.split)
    from vidcls.data.discovery import discover_dataset

    records = discover_dataset(args.data, model_dir=str(args.model)).split(args.split)
    result = {
        "model": str(args.model), "data": str(args.data), "split": args.split,
        "eval_top1": report.top1, "eval_views": f"{report.clips} x {report.crops}", "eval_videos": report.num_videos,
        "eval_seconds": seconds, "eval_top1_one_clip": one_clip.top1, "eval_failed": report.failed,
        **pipeline_top1(args.model, records),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
