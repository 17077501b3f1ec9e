"""Skipping unwanted B-frames: the same frames as decoding everything, and the CPU it saves.

    python benchmarks/decode_skip.py "GLOB" [--every 1] [--all-sets]

For each file GLOB picks (quote it; ``--every N`` takes every N-th), `data.decode.read_frames` reads
8 frames spread over the video (the pipeline's segment sampling; with ``--all-sets`` also every 4th
frame from frame 5, and the first three, the last and one past the end) twice each way: as vidcls
reads (`decode._UnwantedFrames` skips the non-reference frames no wanted frame needs) and with
skipping turned off. Prints the files whose frames differ (there should be none) and the CPU
milliseconds a read takes each way, warm (each file read once first), the ways alternated.
"""

from __future__ import annotations

import argparse
import glob
import time

import numpy as np

from vidcls.data import decode
from vidcls.data.probe import probe_video


def index_sets(num_frames: int, all_sets: bool) -> list[np.ndarray]:
    segment = np.linspace(0, num_frames - 1, 8).round().astype(int)
    if not all_sets:
        return [segment]
    dense = np.arange(5, min(num_frames, 5 + 64), 4)
    return [segment, dense, np.array([0, 1, 2, num_frames - 1, num_frames + 3])]


def read(path: str, indices: np.ndarray, skipping: bool) -> tuple[np.ndarray, float]:
    """The frames and the CPU seconds the read took, with or without skipping."""
    skip, unpacked = decode._UnwantedFrames.skip, decode._UnwantedFrames.unpacked
    if not skipping:
        decode._UnwantedFrames.skip = lambda self, packet: None
        decode._UnwantedFrames.unpacked = lambda self, packet: [packet]
    try:
        start = time.process_time()
        frames = decode.read_frames(path, indices)
        return frames, time.process_time() - start
    finally:
        decode._UnwantedFrames.skip, decode._UnwantedFrames.unpacked = skip, unpacked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pattern")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--all-sets", action="store_true")
    args = parser.parse_args()
    files = sorted(glob.glob(args.pattern, recursive=True))[:: args.every]
    cpu = {True: 0.0, False: 0.0}
    reads = differing = 0
    for number, path in enumerate(files):
        for indices in index_sets(probe_video(path).num_frames, args.all_sets):
            decode.read_frames(path, indices)  # warm: the file in the page cache
            ways = (True, False) if number % 2 else (False, True)
            frames = {}
            for skipping in ways * 2:
                frames[skipping], seconds = read(path, indices, skipping)
                cpu[skipping] += seconds
            reads += 2
            if not np.array_equal(frames[True], frames[False]):
                differing += 1
                print(f"differ: {path} at {indices.tolist()}")
    print(f"{len(files)} files, {reads // 2} index sets: {differing} differ; CPU ms a read: "
          f"skipping {1e3 * cpu[True] / reads:.1f}, decoding every frame {1e3 * cpu[False] / reads:.1f}")


if __name__ == "__main__":
    main()
