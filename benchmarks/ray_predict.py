"""Videos/s of `vidcls predict` in one process and of the Ray engine, on the same files and model.

    .venv/bin/vidcls sample bench/ray-bench --per-class 12
    .venv/bin/python benchmarks/lengthen_videos.py bench/ray-bench --frames 250    # 10 s videos
    .venv/bin/python benchmarks/ray_predict.py vidcls-demo/model 'bench/ray-bench/**/*.avi' --model-copies 1

Prints JSON: CPU ms per video of each stage on one thread (decode + preprocess, model forward),
local `predict` videos/s on 1 thread and on every core (first result to last, so model loading
is left out), and the Ray
engine's start-up seconds and steady videos/s (first row to last) with its model copies, the cores Ray
saw, and the load average before and after. `docs/scale.md` reasons from these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from vidcls.inference.prediction import VideoClassifier, iter_predict
from vidcls.data.views import video_views
from vidcls.inference.ray_engine import connect, read_manifest, score_paths
from vidcls.data.sampling import DEFAULT_CLIPS
from vidcls.inference.options import ViewOptions


def stage_ms(classifier: VideoClassifier, paths: list[str], clips: int) -> dict:
    """Mean ms per video of decoding + preprocessing and of the forward, one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    decode = model = 0.0
    for path in paths:
        started = time.perf_counter()
        views = video_views(path, classifier.spec, clips=clips)
        decoded = time.perf_counter()
        classifier.score(views.views.unsqueeze(0))
        decode, model = decode + decoded - started, model + time.perf_counter() - decoded
    torch.set_num_threads(threads)
    return {"decode_ms": 1000 * decode / len(paths), "model_ms": 1000 * model / len(paths)}


def arrivals(results) -> list[float]:
    """When each result arrived."""
    return [time.perf_counter() for _ in results]


def steady_rate(times: list[float]) -> float:
    """Videos/s from the first result to the last."""
    return (len(times) - 1) / (times[-1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("manifest", help="a glob or a text file of paths")
    parser.add_argument("--model-copies", type=int, default=1, help="Ray model copies")
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS)
    parser.add_argument("--stage-videos", type=int, default=12)
    args = parser.parse_args()
    paths = read_manifest(args.manifest)
    report = {"videos": len(paths), "clips": args.clips, "load_before": os.getloadavg()}
    classifier = VideoClassifier(args.model, "cpu")
    report["one_thread"] = stage_ms(classifier, paths[: args.stage_videos], args.clips)
    for threads in sorted({1, torch.get_num_threads()}):  # one thread is what a Ray worker with 1 CPU runs
        torch.set_num_threads(threads)
        rate = steady_rate(arrivals(iter_predict(classifier.loaded, paths, ViewOptions(clips=args.clips))))
        report[f"local_videos_per_s_{threads}_threads"] = rate
    started = time.perf_counter()
    ray = connect()
    times = arrivals(score_paths(
        args.model, classifier.spec, paths, ViewOptions(clips=args.clips), model_copies=args.model_copies, device="cpu"
    ))
    report.update(
        ray_start_s=times[0] - started, ray_videos_per_s=steady_rate(times), ray_model_copies=args.model_copies,
        ray_cpus=ray.cluster_resources().get("CPU"), load_after=os.getloadavg(),
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
