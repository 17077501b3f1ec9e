"""Make every video of a dataset folder at least N frames long, in place, by looping its frames.

Why: `vidcls sample` writes 2-3 s clips (50-75 frames), but UCF101 clips are ~7 s
(~175 frames at 25 fps). On clips shorter than a 16x4 clip's 64-frame span a reader decodes
the whole file whatever it does, so seeking to the clip's start is never measured. Looping a
clip forward keeps its look and frame rate (the motion jumps back at each loop, which does
not matter for throughput figures).

    .venv/bin/python benchmarks/lengthen_videos.py bench/data --frames 175

Re-encodes with the settings `vidcls.data.synthetic` uses for .avi (MPEG-4 Part 2, -q:v 3,
a keyframe every 12 frames); .mp4 files are re-encoded the same way.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import numpy as np

from vidcls.data.files import is_video_file

_MPEG4_OPTIONS = {"flags": "+qscale", "global_quality": str(3 * 118)}


def decode_all(path: Path) -> tuple[list[np.ndarray], int]:
    """Every frame as RGB, and the frame rate rounded to an integer."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = int(round(float(stream.average_rate or 25)))
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)], fps


def write_looped(path: Path, frames: list[np.ndarray], fps: int, min_frames: int) -> int:
    """Re-encode ``frames`` repeated forward until there are at least ``min_frames``; returns the count."""
    count = max(min_frames, len(frames))
    height, width = frames[0].shape[:2]
    with tempfile.NamedTemporaryFile(suffix=path.suffix, dir=path.parent, delete=False) as handle:
        partial = Path(handle.name)
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps, options=_MPEG4_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(count):
            image = av.VideoFrame.from_ndarray(frames[t % len(frames)], format="rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    partial.replace(path)
    return count


def lengthen_dataset(root: Path, min_frames: int) -> tuple[int, int]:
    """Loop every video under ``root`` shorter than ``min_frames``; returns (videos changed, videos seen)."""
    changed = seen = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and is_video_file(p)):
        seen += 1
        frames, fps = decode_all(path)
        if frames and len(frames) < min_frames:
            write_looped(path, frames, fps, min_frames)
            changed += 1
    return changed, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="dataset folder (e.g. written by `vidcls sample`)")
    parser.add_argument("--frames", type=int, default=175, help="minimum frames per video (UCF101: ~175)")
    args = parser.parse_args()
    changed, seen = lengthen_dataset(args.root, args.frames)
    print(f"lengthened {changed} of {seen} videos under {args.root} to >= {args.frames} frames")


if __name__ == "__main__":
    main()
