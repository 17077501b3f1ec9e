"""Where `vidcls predict` spends a video's time, stage by stage: open, probe, decode and seek, colour
conversion, resize, crop, forward, post (stacking the batch and the rest: "other").

    python benchmarks/predict_profile.py MODEL "GLOB" [--videos 48]

MODEL is a preset (saved untrained, with the classes of the files' folders as labels), a model
directory or an ONNX export (`vidcls export`); GLOB picks the files (quote it), taken class by
class in turn. Each file goes through `VideoClassifier.predict` (one file per call, one thread, so
the stages add up to the wall time), one clip, one crop, as `vidcls benchmark`'s rows. Each stage
is timed by wrapping the function that does it; "decode + seek" is what `read_video` spends
besides opening, probing, converting and resizing. Prints JSON: ms per video per stage.
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from vidcls.data import decode, probe, views
from vidcls.inference import prediction
from vidcls.inference.options import ViewOptions
from vidcls.models.loading import create_model
from vidcls.models.saving import save_model

STAGES: collections.Counter = collections.Counter()
WRAPPED = (  # (module, attribute, stage)
    (decode, "open_video", "open"), (probe, "open_video", "open"), (probe, "_probe", "probe"),
    (decode, "to_rgb", "colour conversion (swscale)"), (decode, "resize_frames", "resize (torch, antialiased)"),
    (views, "read_video", "read_video"), (views.EvalTransform, "__call__", "crop + to tensor"),
    (prediction, "video_probabilities", "forward (normalise + model)"),
    (prediction, "top_k_labels", "post (top-k)"),
)


def _timed(owner, name: str, stage: str) -> None:
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            STAGES[stage] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def pick_files(pattern: str, count: int) -> list[str]:
    by_class: dict[str, list[str]] = {}
    for path in sorted(glob.glob(pattern, recursive=True)):
        by_class.setdefault(Path(path).parent.name, []).append(path)
    longest = max(map(len, by_class.values()))
    return [paths[i] for i in range(longest) for paths in by_class.values() if i < len(paths)][:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("pattern")
    parser.add_argument("--videos", type=int, default=48)
    args = parser.parse_args()
    files = pick_files(args.pattern, args.videos)
    model = args.model
    if not Path(model).is_dir():
        model = tempfile.mkdtemp(prefix="vidcls-profile-")
        save_model(create_model(args.model, sorted({Path(f).parent.name for f in files})), model)
    for owner, name, stage in WRAPPED:
        _timed(owner, name, stage)
    classifier = prediction.VideoClassifier(model)
    options = ViewOptions(clips=1, top_k=1)
    for path in files[:4]:  # warm-up: first allocations, lazy initialisation
        classifier.predict(path, options)
    STAGES.clear()
    start = time.perf_counter()
    for path in files:
        classifier.predict(path, options)
    total = time.perf_counter() - start
    read = STAGES.pop("read_video")
    inside_read = ("open", "probe", "colour conversion (swscale)", "resize (torch, antialiased)")
    STAGES["decode + seek"] = read - sum(STAGES[stage] for stage in inside_read)
    per_video = {stage: round(1e3 * seconds / len(files), 2) for stage, seconds in STAGES.most_common()}
    per_video["other"] = round(1e3 * (total - sum(STAGES.values())) / len(files), 2)
    print(json.dumps({"model": args.model, "files": args.pattern, "videos": len(files),
                      "ms_per_video": round(1e3 * total / len(files), 2), "stages_ms_per_video": per_video,
                      "torch_threads": torch.get_num_threads(), "load": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
