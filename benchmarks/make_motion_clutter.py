"""Write a hard motion dataset that vidcls's own generator (`vidcls sample`) did not make.

Why: the default recipe must learn cluttered motion in general, not the look of one generator.
This one differs from `vidcls.data.synthetic` on purpose: per-frame sensor noise over a smooth
background (so frame differences are noisy everywhere), a textured ellipse as the object (8-18%
of the frame height), two or three smaller bouncing distractors (4-7%), 256x192 H.264 MP4 at
30 fps with a keyframe a second, 2.5 to 4 s per clip, other class names, and a few broken files
mixed in (a truncated MP4, an empty file, a text file).

    python benchmarks/make_motion_clutter.py OUT [--per-class 60] [--seed 0]

Writes OUT/{train,val,test}/<Class>/v_<Class>_gNN_cNN.mp4, groups of 4 clips never shared by two
splits (about 70/15/15). Only numpy and PyAV are needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np

CLASSES = ("Leftward", "Rightward", "Upward", "Downward", "Approach", "Recede")
WIDTH, HEIGHT, FPS = 256, 192, 30
CLIPS_PER_GROUP = 4


def background(rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour field: a few low-frequency cosines per channel."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH] / max(WIDTH, HEIGHT)
    field = np.zeros((HEIGHT, WIDTH, 3))
    for _ in range(4):
        fx, fy, phase = rng.uniform(0.5, 3), rng.uniform(0.5, 3), rng.uniform(0, 2 * np.pi)
        field += rng.uniform(-25, 25, 3) * np.cos(2 * np.pi * (fx * x + fy * y) + phase)[..., None]
    return field + rng.uniform(70, 180, 3)


def ellipse_mask(cx: float, cy: float, rx: float, ry: float, angle: float) -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    dx, dy = x - cx, y - cy
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    return np.clip((1 - np.sqrt((u / rx) ** 2 + (v / ry) ** 2)) * 4, 0, 1)  # soft edge


def main_path(label: str, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre x, centre y and size scale per frame for the class's motion."""
    t = np.linspace(0, 1, frames)
    cx, cy = rng.uniform(0.35, 0.65) * WIDTH, rng.uniform(0.35, 0.65) * HEIGHT
    travel = rng.uniform(0.35, 0.6)
    xs, ys, scale = np.full(frames, cx), np.full(frames, cy), np.ones(frames)
    if label in ("Leftward", "Rightward"):
        sign = -1 if label == "Leftward" else 1
        xs = cx + sign * (t - 0.5) * travel * WIDTH
    elif label in ("Upward", "Downward"):
        sign = -1 if label == "Upward" else 1
        ys = cy + sign * (t - 0.5) * travel * HEIGHT
    else:
        grow = rng.uniform(1.8, 2.6)
        scale = grow ** (t - 0.5) if label == "Approach" else grow ** (0.5 - t)
    return xs, ys, scale


def clip(label: str, rng: np.random.Generator) -> np.ndarray:
    frames = int(rng.uniform(2.5, 4.0) * FPS)
    base = background(rng)
    size = rng.uniform(0.08, 0.18) * HEIGHT
    aspect, angle = rng.uniform(0.6, 1.0), rng.uniform(0, np.pi)
    colour = base.mean((0, 1)) + rng.choice([-1, 1]) * rng.uniform(35, 60) * np.sign(rng.uniform(-1, 1, 3) + 0.3)
    texture = rng.normal(0, 12, (HEIGHT, WIDTH, 3))
    xs, ys, scale = main_path(label, frames, rng)
    distractors = []
    for _ in range(rng.integers(2, 4)):
        distractors.append(dict(
            x=rng.uniform(0, WIDTH), y=rng.uniform(0, HEIGHT), vx=rng.uniform(-2.5, 2.5), vy=rng.uniform(-2.5, 2.5),
            r=rng.uniform(0.02, 0.035) * HEIGHT, colour=base.mean((0, 1)) + rng.uniform(-60, 60, 3),
        ))
    video = np.empty((frames, HEIGHT, WIDTH, 3), np.uint8)
    for f in range(frames):
        image = base.copy()
        for d in distractors:
            d["x"], d["y"] = d["x"] + d["vx"], d["y"] + d["vy"]
            if not 0 <= d["x"] < WIDTH:
                d["vx"] *= -1
            if not 0 <= d["y"] < HEIGHT:
                d["vy"] *= -1
            mask = ellipse_mask(d["x"], d["y"], d["r"], d["r"], 0)[..., None]
            image = image * (1 - mask) + d["colour"] * mask
        rx = size * scale[f] / 2
        mask = ellipse_mask(xs[f], ys[f], rx, rx * aspect, angle)[..., None]
        image = image * (1 - mask) + (colour + texture) * mask
        image += rng.normal(0, 6, image.shape)  # sensor noise, new every frame
        video[f] = np.clip(image, 0, 255).astype(np.uint8)
    return video


def encode(path: Path, video: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        # A keyframe a second, as cameras and phones write them.
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "20", "preset": "veryfast", "g": "30"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def split_of(group: int, groups: int) -> str:
    """Last ~15% of groups test, the ~15% before them val."""
    held = max(1, round(groups * 0.15))
    if group > groups - held:
        return "test"
    return "val" if group > groups - 2 * held else "train"


def write(out: Path, per_class: int, seed: int) -> None:
    groups = max(3, per_class // CLIPS_PER_GROUP)
    for class_index, label in enumerate(CLASSES):
        for group in range(1, groups + 1):
            for number in range(1, CLIPS_PER_GROUP + 1):
                rng = np.random.default_rng([seed, class_index, group, number])
                path = out / split_of(group, groups) / label / f"v_{label}_g{group:02d}_c{number:02d}.mp4"
                encode(path, clip(label, rng))
    good = next((out / "train" / CLASSES[0]).glob("*.mp4"))
    (out / "train" / CLASSES[1] / "v_Rightward_g99_c01.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    (out / "test" / CLASSES[2] / "v_Upward_g99_c01.mp4").write_bytes(b"")
    (out / "val" / CLASSES[3] / "notes.txt").write_text("not a video\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write(args.out, args.per_class, args.seed)
