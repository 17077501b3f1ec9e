"""Peak memory of the training loader on a 10-minute video vs a 10-second one.

The loader should hold a few batches per worker whatever the length of the videos it reads:
a read seeks to the clip and decodes only its span, converting each frame as it comes.

    .venv/bin/python benchmarks/loader_memory.py [--minutes 10] [--batches 20] [--workers 2]

Writes both videos (320x240 MPEG-4 AVI, 25 fps, a small square moving over a still
background, so the long one encodes in well under a minute) to a temporary folder, then
runs the guide-setting loader (`training.loop.build_loaders`, 16x4 clips, 224 crops, batch 8) on
each and prints the peak RSS of the main process and of each worker, sampled every 10 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import psutil
import torch

from vidcls.benchmarking import GUIDE_SPEC
from vidcls.data.discovery import DatasetIndex, VideoRecord
from vidcls.models.loading import create_model
from vidcls.training.loop import TrainConfig, build_loaders
from vidcls.data.probe import probe_video


def write_still_video(path: Path, seconds: float, fps: int = 25, width: int = 320, height: int = 240) -> Path:
    """A still textured background with a small moving square: cheap to encode, real to decode."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps, options={"flags": "+qscale", "global_quality": str(3 * 118)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(int(seconds * fps)):
            frame = background.copy()
            x = (4 * t) % (width - 32)
            frame[100:132, x : x + 32] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def _sample_peaks(stop: threading.Event, peaks: dict[str, int]) -> None:
    main = psutil.Process()
    while not stop.is_set():
        for proc in [main, *main.children(recursive=True)]:
            try:
                key = "main" if proc.pid == main.pid else f"worker {proc.pid}"
                peaks[key] = max(peaks.get(key, 0), proc.memory_info().rss)
            except psutil.Error:
                continue
        stop.wait(0.01)


def loader_peak_rss(path: Path, batches: int, workers: int, batch_size: int = 8) -> dict:
    """Peak RSS (MB) of the main process and the largest worker while the loader reads ``batches`` batches."""
    record = VideoRecord(path, "still", probe_video(path))
    records = [record] * (batches * batch_size)
    index = DatasetIndex(path.parent, "memory", ["still"], {"train": records, "val": [], "test": []})
    loaded = dataclasses.replace(create_model("tiny", ["still"]), spec=GUIDE_SPEC)
    config = TrainConfig(data="", output="", batch_size=batch_size, workers=workers, progress=False)
    loader, _ = build_loaders(index, loaded, config, torch.device("cpu"))
    peaks: dict[str, int] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_peaks, args=(stop, peaks), daemon=True)
    sampler.start()
    start = time.perf_counter()
    for _ in loader:
        pass
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    workers_mb = [v / 2**20 for k, v in peaks.items() if k != "main"]
    return {
        "video_frames": record.info.num_frames,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "main_peak_rss_mb": round(peaks["main"] / 2**20, 1),
        "worker_peak_rss_mb": round(max(workers_mb), 1) if workers_mb else None,
        "clips_per_s": round(batches * batch_size / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidcls-memory-") as folder:
        short = write_still_video(Path(folder) / "short.avi", 10)
        long = write_still_video(Path(folder) / "long.avi", args.minutes * 60)
        result = {
            "10 s": loader_peak_rss(short, args.batches, args.workers),
            f"{args.minutes:g} min": loader_peak_rss(long, args.batches, args.workers),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
