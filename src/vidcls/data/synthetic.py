"""A small synthetic video dataset whose classes differ only in motion.

Why it exists: vidcls must be demonstrable and testable on a machine that reaches no
model hub and has no real videos. A model can only solve this dataset by looking at how
things move: appearance (shape, colour, background) is drawn independently of the class, and every class has a time-reversed twin (MoveLeft/MoveRight, MoveUp/MoveDown,
ZoomIn/ZoomOut) whose paths are the same paths played backwards, so a frame taken at a
random time has the same distribution of position and size for both classes of a pair.

The files mimic UCF101: `v_<Class>_gNN_cNN.avi` (MPEG-4 Part 2 in AVI, yuv420p), clips of
one group share their shape (as UCF101 groups share an actor) while colours and background
change per clip, and the "split" layout splits by group. Sharing the whole look within a
group was tried first: with ~9 looks per class `tiny` learned the looks, not the motion, and
scored 0.67 on test groups against 0.96 on validation.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

from vidcls.errors import DatasetError, OutputExistsError

MOTION_CLASSES: tuple[str, ...] = ("MoveLeft", "MoveRight", "MoveUp", "MoveDown", "ZoomIn", "ZoomOut")
SPLITS: tuple[str, ...] = ("train", "val", "test")
MARKER_NAME = ".vidcls-synthetic.json"
FLAT_SPLIT = "all"
"""Key of `SyntheticDatasetSummary.counts` for the flat layout, which has no splits."""

CLIPS_PER_GROUP = 4
"""Smallest usual group: groups hold 4 or 5 clips (UCF101 groups hold 4 to 7)."""
MIN_GROUPS_PER_CLASS = len(SPLITS)
VIDEO_NAME = re.compile(r"^v_(?P<label>[A-Za-z]+)_g(?P<group>\d{2,})_c(?P<clip>\d{2,})\.(?:avi|mp4)$")

_FRAME_COUNTS = (50, 75)  # inclusive: 2 to 3 s at 25 fps, so a 64-frame span mostly fits
# Speeds trade clear motion in a short window against how much the FIRST frame tells: the
# faster a path, the less room it has to start anywhere (a frame at a random time tells nothing).
# Measured: at a third of these speeds `tiny` stayed near chance after 20 epochs; at these it
# reaches >= 0.95 validation accuracy in about 10.
_MOVE_SPEED = (0.010, 0.016)  # short sides per frame: 32-51% of the short side in 32 frames
_ZOOM_RATE = (0.016, 0.024)  # log-size per frame: x1.7-2.2 in 32 frames
_EDGE_MARGIN = 0.5  # centres stay this many radii inside the frame: the object stays >= ~80% visible
_SHAPES = ("circle", "square", "triangle", "cross")
# ffmpeg's -q:v 3 (near-transparent; 118 is FF_QP2LAMBDA) and x264 at CRF 18.
_MPEG4 = ("mpeg4", {"flags": "+qscale", "global_quality": str(3 * 118)})
_X264 = ("libx264", {"crf": "18", "preset": "veryfast"})
_VIDEO_FORMATS = ("avi", "mp4")


@dataclass(frozen=True)
class SyntheticDatasetSummary:
    """What `write_synthetic_dataset` wrote: counts[split][class] is a number of clips
    (split is "train"/"val"/"test", or `FLAT_SPLIT` for the flat layout)."""

    root: Path
    layout: str
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    num_files: int


@dataclass(frozen=True)
class _Difficulty:
    """Knobs that make the task easy or hard; sizes are diameters in short sides."""

    size: tuple[float, float]  # Move* diameters are drawn from it, Zoom* sweep inside it
    textured: bool  # blotchy noise, else a plain gently graded background
    contrast: tuple[float, float] | None  # |object - background| per channel; None: opposite
    # halves of the brightness range (dark on light or light on dark, >= 55 apart per channel)
    distractors: tuple[int, int]  # inclusive range of randomly moving extra shapes


_DIFFICULTIES = {
    "easy": _Difficulty(size=(0.25, 0.5), textured=False, contrast=None, distractors=(0, 0)),
    "hard": _Difficulty(size=(0.09, 0.27), textured=True, contrast=(40.0, 65.0), distractors=(1, 3)),
}


@dataclass(frozen=True)
class _Look:
    """How one shape looks."""

    shape: str
    angle: float
    colour: np.ndarray  # (3,) float32 RGB


@dataclass(frozen=True)
class _Sprite:
    """A shape and its path: centre x, centre y and radius (pixels) for every frame."""

    look: _Look
    xs: np.ndarray
    ys: np.ndarray
    radii: np.ndarray


@dataclass(frozen=True)
class _ClipLook:
    """How one clip looks: background, main shape, distractor shapes."""

    background: np.ndarray  # (H, W, 3) float32
    main: _Look
    distractors: tuple[_Look, ...]


def write_synthetic_dataset(
    out: Path,
    *,
    per_class: int = 24,
    seed: int = 0,
    layout: Literal["split", "flat"] = "split",
    video_format: Literal["avi", "mp4"] = "avi",
    difficulty: Literal["easy", "hard"] = "easy",
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    overwrite: bool = False,
) -> SyntheticDatasetSummary:
    """Write `per_class` clips of every class in `MOTION_CLASSES` under `out`.

    "split" writes out/{train,val,test}/<Class>/ split by group (about 70/15/15, at least
    one group per class in each split); "flat" writes out/<Class>/. The same settings
    always produce the same frames. Refuses to touch a non-empty `out` unless
    `overwrite` is set and `out` holds only a previous synthetic dataset.
    """
    out = Path(out)
    _check_settings(per_class, seed, layout, video_format, difficulty, width, height, fps)
    _clear_output(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    # The marker goes first so an interrupted run can still be replaced with --overwrite.
    marker = {
        "generator": "vidcls.data.synthetic", "per_class": per_class, "seed": seed, "layout": layout,
        "video_format": video_format, "difficulty": difficulty, "width": width, "height": height, "fps": fps,
    }
    (out / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
    spec = _DIFFICULTIES[difficulty]
    counts: dict[str, dict[str, int]] = {}
    for class_index, label in enumerate(MOTION_CLASSES):
        for group, split, clips in _group_plan(per_class, layout):
            folder = out / label if layout == "flat" else out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            shape = str(np.random.default_rng([seed, class_index, group, 0]).choice(_SHAPES))
            for clip in range(1, clips + 1):
                look = _clip_look(np.random.default_rng([seed, class_index, group, clip, 0]), spec, width, height, shape)
                rng = np.random.default_rng([seed, class_index, group, clip])
                frames = _clip_frames(label, look, spec, rng, width, height)
                name = f"v_{label}_g{group:02d}_c{clip:02d}.{video_format}"
                _encode(folder / name, frames, width, height, fps, video_format)
            split_counts = counts.setdefault(split, {})
            split_counts[label] = split_counts.get(label, 0) + clips
    total = sum(n for split_counts in counts.values() for n in split_counts.values())
    return SyntheticDatasetSummary(out, layout, MOTION_CLASSES, counts, total)


def _check_settings(
    per_class: int, seed: int, layout: str, video_format: str, difficulty: str, width: int, height: int,
    fps: int,
) -> None:
    """Reject settings that would give an unusable dataset, before anything is written."""
    if seed < 0:
        raise DatasetError(f"seed must be 0 or more, not {seed}")
    if layout not in ("split", "flat"):
        raise DatasetError(f"layout must be 'split' or 'flat', not {layout!r}")
    if video_format not in _VIDEO_FORMATS:
        raise DatasetError(f"video format must be one of {', '.join(_VIDEO_FORMATS)}, not {video_format!r}")
    if difficulty not in _DIFFICULTIES:
        raise DatasetError(f"difficulty must be one of {', '.join(_DIFFICULTIES)}, not {difficulty!r}")
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise DatasetError(f"frame size must be even and at least 32x32 (yuv420p), not {width}x{height}")
    if fps < 1:
        raise DatasetError(f"fps must be at least 1, not {fps}")
    if layout == "flat" and per_class < 1:
        raise DatasetError(f"per_class must be at least 1, not {per_class}")
    minimum = MIN_GROUPS_PER_CLASS * CLIPS_PER_GROUP
    if layout == "split" and per_class < minimum:
        raise DatasetError(
            f"per_class must be at least {minimum} for the 'split' layout, not {per_class}: clips come in "
            f"groups of {CLIPS_PER_GROUP} and train, val and test each need a group of every class"
        )


def _clear_output(out: Path, overwrite: bool) -> None:
    """Make sure writing to `out` destroys nothing but a previous synthetic dataset."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise OutputExistsError(
            f"{out} is not empty; pass --overwrite to replace a previous synthetic dataset there"
        )
    if not (out / MARKER_NAME).is_file():
        raise OutputExistsError(
            f"{out} is not empty and has no {MARKER_NAME}, so it is not a vidcls synthetic dataset; "
            "refusing to delete it: choose another folder"
        )
    foreign = _first_foreign_file(out)
    if foreign is not None:
        raise OutputExistsError(
            f"{out} holds {foreign}, which the synthetic dataset generator does not write; "
            "refusing to delete it: choose another folder"
        )
    shutil.rmtree(out)


def _first_foreign_file(out: Path) -> Path | None:
    """The first file or link under `out` that the generator would not have written, or None."""
    marker = out / MARKER_NAME
    for path in sorted(out.rglob("*")):
        if path.is_symlink() or (path.is_file() and path != marker and not VIDEO_NAME.match(path.name)):
            return path
    return None


def _group_plan(per_class: int, layout: str) -> Iterator[tuple[int, str, int]]:
    """Yield (group number, split, clips in the group) for one class.

    Groups hold 4 or 5 clips (more or fewer only when per_class < 12); the last ~15% of
    groups go to test, the ~15% before them to val, so a group (one look) never lands in
    two splits."""
    groups = max(1, per_class // CLIPS_PER_GROUP)
    sizes = [per_class // groups + (1 if g < per_class % groups else 0) for g in range(groups)]
    held_out = max(1, round(0.15 * groups))
    for number, size in enumerate(sizes, start=1):
        if layout == "flat":
            split = FLAT_SPLIT
        elif number > groups - held_out:
            split = "test"
        elif number > groups - 2 * held_out:
            split = "val"
        else:
            split = "train"
        yield number, split, size


def _clip_look(rng: np.random.Generator, spec: _Difficulty, width: int, height: int, shape: str) -> _ClipLook:
    """Draw a background and shape looks with enough contrast between them for `spec`;
    the labelled shape is the group's ``shape``."""
    light = bool(rng.random() < 0.5)
    if spec.textured:
        base = rng.uniform(80, 175, 3)
        background = _textured_background(rng, base, width, height)
    else:
        base = rng.uniform(150, 235, 3) if light else rng.uniform(20, 100, 3)
        background = _graded_background(rng, base, width, height)
    sign = -1.0 if light else 1.0

    def look(shape: str) -> _Look:
        if spec.contrast is None:
            colour = rng.uniform(0, 80, 3) if light else rng.uniform(170, 255, 3)
        else:
            colour = base + sign * rng.uniform(*spec.contrast) + rng.uniform(-10, 10, 3)
        return _Look(shape, float(rng.uniform(0, 2 * np.pi)), np.clip(colour, 0, 255).astype(np.float32))

    main = look(shape)
    count = int(rng.integers(spec.distractors[0], spec.distractors[1] + 1))
    distractors = tuple(look(str(rng.choice(_SHAPES))) for _ in range(count))
    return _ClipLook(background, main, distractors)


def _graded_background(rng: np.random.Generator, base: np.ndarray, width: int, height: int) -> np.ndarray:
    """A plain colour with a gentle (at most +-15 per channel) linear gradient in a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(angle) * (xs / width - 0.5) + np.sin(angle) * (ys / height - 0.5)) * 2 / math.sqrt(2)
    return (base + ramp[..., None] * rng.uniform(-15, 15, 3)).astype(np.float32)


def _textured_background(rng: np.random.Generator, base: np.ndarray, width: int, height: int) -> np.ndarray:
    """Blotches at two scales plus fine grain: clutter the object must be told apart from."""
    cell = max(4, min(width, height) // 10)
    texture = 22 * _smooth_noise(rng, width, height, cell)
    texture += 12 * _smooth_noise(rng, width, height, max(2, cell // 4))
    texture += rng.uniform(-6, 6, (height, width))
    return np.clip(base + texture[..., None], 0, 255).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cell: int) -> np.ndarray:
    """Uniform noise on a grid of `cell`-pixel cells, bilinearly upsampled: values in [-1, 1]."""
    grid = rng.uniform(-1, 1, (height // cell + 2, width // cell + 2))
    y, x = np.arange(height) / cell, np.arange(width) / cell
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _clip_frames(
    label: str, look: _ClipLook, spec: _Difficulty, rng: np.random.Generator, width: int, height: int
) -> Iterator[np.ndarray]:
    """Yield the (H, W, 3) uint8 frames of one clip: distractors first, the labelled shape on top."""
    frames = int(rng.integers(_FRAME_COUNTS[0], _FRAME_COUNTS[1] + 1))
    main = _main_sprite(label, look.main, spec, rng, frames, width, height)
    sprites = [_distractor_sprite(d, main, rng, frames, width, height) for d in look.distractors] + [main]
    for t in range(frames):
        frame = look.background.copy()
        for sprite in sprites:
            _paint(frame, sprite, t)
        yield (frame + 0.5).astype(np.uint8)


def _main_sprite(
    label: str, look: _Look, spec: _Difficulty, rng: np.random.Generator, frames: int, width: int, height: int
) -> _Sprite:
    """The labelled shape's path, inside the frame's central square.

    Each pair of classes draws one path and plays it forwards or backwards, which makes the
    two classes' per-frame distributions identical; the square makes horizontal and vertical
    paths alike and keeps the action in view of resize-then-centre-crop pipelines (VideoMAE's)."""
    short = min(width, height)
    left, top = (width - short) / 2, (height - short) / 2
    low, high = (math.log(d * short / 2) for d in spec.size)
    if label.startswith("Zoom"):
        radii = np.exp(_linear_path(rng, frames, low, high, rng.uniform(*_ZOOM_RATE)))
        radii = radii if label == "ZoomIn" else radii[::-1]
        margin = _EDGE_MARGIN * radii.max()
        xs = np.full(frames, left + rng.uniform(margin, short - margin))
        ys = np.full(frames, top + rng.uniform(margin, short - margin))
        return _Sprite(look, xs, ys, radii)
    radius = math.exp(rng.uniform(low, high))
    margin = _EDGE_MARGIN * radius
    path = _linear_path(rng, frames, margin, short - margin, rng.uniform(*_MOVE_SPEED) * short)
    path = path if label in ("MoveRight", "MoveDown") else path[::-1]
    still = np.full(frames, rng.uniform(margin, short - margin))
    if label in ("MoveLeft", "MoveRight"):
        return _Sprite(look, left + path, top + still, np.full(frames, radius))
    return _Sprite(look, left + still, top + path, np.full(frames, radius))


def _linear_path(rng: np.random.Generator, frames: int, low: float, high: float, step: float) -> np.ndarray:
    """Increasing values `step` apart (less if [low, high] is too short), placed uniformly in
    [low, high]: a path that never leaves its range, so nothing bounces or wraps."""
    travel = min(step * (frames - 1), high - low)
    start = rng.uniform(low, max(low, high - travel))  # max(): rounding when travel == high - low
    return start + np.linspace(0.0, travel, frames)


def _distractor_sprite(
    look: _Look, main: _Sprite, rng: np.random.Generator, frames: int, width: int, height: int
) -> _Sprite:
    """A smaller shape drifting straight in a random direction (so its motion says nothing about
    the label), at a random point of the frame mid-clip; it may leave the frame."""
    radius = float(np.median(main.radii)) * rng.uniform(0.4, 0.7)
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(*_MOVE_SPEED) * min(width, height)
    t = np.arange(frames) - (frames - 1) / 2
    xs = rng.uniform(0, width) + np.cos(angle) * speed * t
    ys = rng.uniform(0, height) + np.sin(angle) * speed * t
    return _Sprite(look, xs, ys, np.full(frames, radius))


def _paint(frame: np.ndarray, sprite: _Sprite, t: int) -> None:
    """Blend the sprite into `frame` in place, touching only its bounding box. Edges are
    anti-aliased over one pixel, so sub-pixel motion shows as smooth change, not 1-px jumps."""
    cx, cy, radius = float(sprite.xs[t]), float(sprite.ys[t]), float(sprite.radii[t])
    reach = 1.3 * radius + 2
    x0, x1 = max(0, int(cx - reach)), min(frame.shape[1], int(cx + reach) + 1)
    y0, y1 = max(0, int(cy - reach)), min(frame.shape[0], int(cy + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
    alpha = np.clip(0.5 - _signed_distance(sprite.look, dx, dy, radius), 0.0, 1.0)[..., None]
    region = frame[y0:y1, x0:x1]
    region += alpha * (sprite.look.colour - region)


def _signed_distance(look: _Look, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Approximate distance in pixels to the shape's outline, negative inside (exact enough for
    one pixel of anti-aliasing). Shapes fit in about 1.2 radii whatever their rotation."""
    if look.shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - radius
    cos, sin = math.cos(look.angle), math.sin(look.angle)
    u, v = cos * dx + sin * dy, cos * dy - sin * dx
    if look.shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.8 * radius
    if look.shape == "cross":  # union of two bars: the nearer bar's distance
        abs_u, abs_v = np.abs(u), np.abs(v)
        horizontal = np.maximum(abs_u - radius, abs_v - 0.35 * radius)
        return np.minimum(horizontal, np.maximum(abs_u - 0.35 * radius, abs_v - radius))
    # Equilateral triangle with circumradius 1.2 * radius: three edges whose outward normals
    # point at 90, 210 and 330 degrees; the inradius is half the circumradius.
    half_root3 = math.sqrt(3) / 2
    edges = np.maximum(v, np.maximum(-half_root3 * u - 0.5 * v, half_root3 * u - 0.5 * v))
    return edges - 0.6 * radius


def _encode(
    path: Path, frames: Iterator[np.ndarray], width: int, height: int, fps: int, video_format: str
) -> None:
    """Encode RGB frames to `path` as yuv420p with the codec of `video_format`, at high quality
    so compression does not smear the motion the classes are about."""
    codec, options = _codec(video_format)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def _codec(video_format: str) -> tuple[str, dict[str, str]]:
    """The encoder and its options: MPEG-4 Part 2 for avi (as UCF101 ships), H.264 for mp4.

    PyAV wheels bundle libx264; an ffmpeg built without it gets MPEG-4 Part 2 in the mp4
    container instead, which every decoder vidcls uses still reads."""
    if video_format == "mp4" and "libx264" in av.codecs_available:
        return _X264
    return _MPEG4
