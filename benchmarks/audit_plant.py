"""Plant near-copies and flipped labels in a synthetic dataset, for `vidcls audit`'s benchmark.

Usage:
    python benchmarks/audit_plant.py copies DATA --count 20 --seed 0    # copies of test videos into train
    python benchmarks/audit_plant.py flip DATA --share 0.05 --seed 0    # move 5% of train videos to a wrong class

Each copy takes a test video, re-encodes it with the other codec at a lower quality (MPEG-4 Part 2
<-> H.264), at 75% of its size, without its first 10%, at another frame rate (25 -> 15 fps:
frames chosen by time), and, for every other copy, a 4% crop on each side; it is written into
train/<same class>/ under an unrelated name. The planted pairs go to DATA/planted.json (copies)
or DATA/flipped.json (flips), which `audit_score.py` reads.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import av
import numpy as np

TRIM_START = 0.10
SCALE = 0.75
COPY_FPS = 15
CROP = 0.04


def read_all(path: Path) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate)


def write(path: Path, frames: np.ndarray, fps: int) -> None:
    codec, options = ("libx264", {"crf": "30", "preset": "veryfast"}) if path.suffix == ".mp4" else (
        "mpeg4", {"flags": "+qscale", "global_quality": str(8 * 118)})
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def transformed(frames: np.ndarray, fps: float, crop: bool) -> np.ndarray:
    """Trim 10% at the start, resample to COPY_FPS by time, crop, resize to 75% (even sizes)."""
    start = int(round(TRIM_START * len(frames)))
    duration = (len(frames) - start) / fps
    times = np.arange(int(duration * COPY_FPS)) / COPY_FPS
    picked = frames[start + np.minimum((times * fps).astype(int), len(frames) - start - 1)]
    if crop:
        h, w = picked.shape[1:3]
        dy, dx = int(h * CROP), int(w * CROP)
        picked = picked[:, dy : h - dy, dx : w - dx]
    h, w = picked.shape[1:3]
    size = (int(w * SCALE) // 2 * 2, int(h * SCALE) // 2 * 2)
    import PIL.Image

    return np.stack([np.asarray(PIL.Image.fromarray(f).resize(size, PIL.Image.BILINEAR)) for f in picked])


def plant_copies(root: Path, count: int, seed: int) -> None:
    tests = sorted((root / "test").rglob("*.*"))
    rng = np.random.default_rng(seed)
    chosen = [tests[i] for i in sorted(rng.choice(len(tests), size=min(count, len(tests)), replace=False))]
    planted = []
    for number, source in enumerate(chosen):
        frames, fps = read_all(source)
        suffix = ".avi" if source.suffix == ".mp4" else ".mp4"
        target = root / "train" / source.parent.name / f"upload_{rng.integers(1e9):09d}{suffix}"
        write(target, transformed(frames, fps, crop=number % 2 == 1), COPY_FPS)
        planted.append([str(source.relative_to(root)), str(target.relative_to(root))])
    (root / "planted.json").write_text(json.dumps(planted, indent=1))
    print(f"planted {len(planted)} copies")


def flip_labels(root: Path, share: float, seed: int) -> None:
    train = sorted((root / "train").rglob("*.*"))
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    chosen = [train[i] for i in sorted(rng.choice(len(train), size=max(1, round(share * len(train))), replace=False))]
    flipped = []
    for path in chosen:
        wrong = str(rng.choice([c for c in classes if c != path.parent.name]))
        target = root / "train" / wrong / path.name
        shutil.move(path, target)
        flipped.append({"path": str(target.relative_to(root)), "true": path.parent.name, "given": wrong})
    (root / "flipped.json").write_text(json.dumps(flipped, indent=1))
    print(f"flipped {len(flipped)} of {len(train)} training labels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["copies", "flip"])
    parser.add_argument("data", type=Path)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.what == "copies":
        plant_copies(args.data, args.count, args.seed)
    else:
        flip_labels(args.data, args.share, args.seed)


if __name__ == "__main__":
    main()
