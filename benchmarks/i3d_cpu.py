"""Kinetics I3D's forward on a CPU: full precision against bf16 scoring, and the answers bf16 keeps.

    python benchmarks/i3d_cpu.py [--gif CRICKET_GIF] [--videos UCF101] [--count 36]
                                 [--settings 16x160 64x224] [--rounds 3] [--onnx]

Timing: one clip (batch 1) of each setting (frames x crop) through `inference.forward.model_logits`
in full precision and in bf16 (channels-last frames, as scoring runs it where the CPU has
AVX512-BF16 or AMX), and with ``--onnx`` through onnxruntime on the model exported as `vidcls export`
exports (float32). The ways alternate within each round, so a change in the machine's load hits
them alike; the figure that survives load is each round's ratio to full precision, printed beside
the medians of wall and CPU (process) time.

Answers, at the model's 64 x 224 and one clip: DeepMind's cricket clip (top-5 and p), and top-1 on
``--count`` videos of a UCF101 folder (classes in turn) in full precision, in bf16 as scoring
returns it (a near tie scored again in full precision, `forward.BF16_RECHECK_GAP`), and in raw
bf16: how far bf16 moves the gap between the two best classes is what the recheck gap must cover.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from vidcls.inference import forward
from vidcls.inference.options import ViewOptions
from vidcls.inference.prediction import VideoClassifier, videos_under
from vidcls.models.loading import load_model
from vidcls.models.pretrained import I3D_KINETICS400

CRICKET = "v_CricketShot_g04_c01_rgb.gif"


def clip_timings(loaded, setting: str, rounds: int, onnx: bool) -> dict:
    """Wall and CPU seconds of one clip's forward per way, alternated round by round."""
    frames, crop = map(int, setting.split("x"))
    spec = replace(loaded.spec, num_frames=frames, crop_size=crop)
    clip = torch.randint(0, 256, (1, frames, 3, crop, crop), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ways = {
        "torch fp32": lambda: forward.model_logits(loaded.model, clip, spec, bf16=False),
        "torch bf16": lambda: forward.model_logits(loaded.model, clip, spec, bf16=True),
    }
    if onnx:
        session = _onnx_session(loaded.model, clip, spec)
        ways["onnxruntime fp32"] = lambda: session(forward.normalize_batch(clip, spec))
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    with torch.inference_mode():
        for way in ways.values():  # warm-up: first allocations, oneDNN's kernel choice
            way()
        for _ in range(rounds):
            for name, way in ways.items():
                cpu, wall = time.process_time(), time.perf_counter()
                way()
                times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    base = times["torch fp32"]
    return {
        name: {"wall_s": statistics.median(t[0] for t in runs), "cpu_s": statistics.median(t[1] for t in runs),
               "wall_vs_fp32_per_round": [round(t[0] / b[0], 3) for t, b in zip(runs, base)]}
        for name, runs in times.items()
    }


def _onnx_session(model, clip: torch.Tensor, spec):
    """The model exported with `publish.export`'s settings at this clip's shape, run as `models.onnx_runtime` runs it."""
    from vidcls.models.onnx_runtime import load_onnx_classifier
    from vidcls.publish.export import OPSET

    folder = Path(tempfile.mkdtemp(prefix="i3d-onnx-"))
    example = forward.normalize_batch(clip, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (), str(folder / "model.onnx"), kwargs={"pixel_values": example},
                          input_names=["pixel_values"], output_names=["logits"], opset_version=OPSET, dynamo=False)
    model.config.save_pretrained(folder)
    classifier = load_onnx_classifier(folder)
    return lambda pixels: classifier(pixel_values=pixels).logits


def cricket_answers(classifier: VideoClassifier, gif: Path) -> dict:
    """Top-5 (label, p) of the cricket clip in full precision and in bf16 scoring."""
    answers = {}
    for precision in ("fp32", "bf16"):
        os.environ[forward.PRECISION_ENV] = precision
        top = classifier.predict(gif, ViewOptions(clips=1, top_k=5)).top_k
        answers[precision] = [(row["label"], round(row["score"], 4)) for row in top]
    return answers


def real_clip_answers(classifier: VideoClassifier, folder: Path, count: int) -> dict:
    """Top-1 in full precision, in scoring's bf16 (near ties rechecked) and in raw bf16, on ``count`` videos."""
    by_class: dict[str, list[Path]] = {}
    for path in videos_under(folder):
        by_class.setdefault(path.parent.name, []).append(path)
    picked = [paths[i] for i in range(max(map(len, by_class.values()))) for paths in by_class.values() if i < len(paths)][:count]
    model, spec, device = classifier.loaded.model, classifier.spec, torch.device("cpu")
    rows = []
    with torch.inference_mode():
        for path in picked:
            views = classifier.preprocess(path, ViewOptions(clips=1)).views[None]
            full = forward._mean_probabilities(model, views, spec, 64, device, False)
            raw = forward._mean_probabilities(model, views, spec, 64, device, True)
            scored = full if forward.near_ties(raw)[0] else raw  # what `video_probabilities` returns in bf16
            gap = lambda p: float(p.topk(2).values[0, 0] - p.topk(2).values[0, 1])  # noqa: E731
            rows.append({"video": path.name, "fp32": int(full.argmax()), "bf16_scored": int(scored.argmax()),
                         "bf16_raw": int(raw.argmax()), "fp32_gap": round(gap(full), 4),
                         "gap_shift": round(abs(gap(full) - gap(raw)), 4), "rechecked": bool(forward.near_ties(raw)[0])})
    return {
        "videos": len(rows),
        "top1_equal_scored": sum(r["fp32"] == r["bf16_scored"] for r in rows),
        "top1_equal_raw": sum(r["fp32"] == r["bf16_raw"] for r in rows),
        "rechecked": sum(r["rechecked"] for r in rows),
        "max_gap_shift": max(r["gap_shift"] for r in rows),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gif", type=Path, help=f"DeepMind's {CRICKET}")
    parser.add_argument("--videos", type=Path, help="a UCF101 folder (<Class>/*.avi)")
    parser.add_argument("--count", type=int, default=36)
    parser.add_argument("--settings", nargs="+", default=["16x160", "64x224"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--onnx", action="store_true", help="also onnxruntime on the exported model")
    args = parser.parse_args()
    loaded = load_model(I3D_KINETICS400)
    result = {"cpu_has_native_bf16": forward.cpu_has_native_bf16(), "capability": torch.backends.cpu.get_cpu_capability(),
              "threads": torch.get_num_threads(), "load_before": os.getloadavg()}
    result["timings"] = {setting: clip_timings(loaded, setting, args.rounds, args.onnx) for setting in args.settings}
    classifier = VideoClassifier(loaded)
    if args.gif:
        result["cricket"] = cricket_answers(classifier, args.gif)
    if args.videos:
        result["real_clips"] = real_clip_answers(classifier, args.videos, args.count)
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
