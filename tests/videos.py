"""Tiny real videos for the tests, written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

DIRECTIONS = {"MoveLeft": (-1, 0), "MoveRight": (1, 0), "MoveUp": (0, -1), "MoveDown": (0, 1)}


def write_video(path: Path, frames: np.ndarray, fps: int = 25, codec: str = "mpeg4", b_frames: int = 0) -> Path:
    """Encode (T, H, W, 3) uint8 frames, with up to ``b_frames`` B-frames in a row; the container follows the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 2_000_000
        stream.codec_context.max_b_frames = b_frames
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def moving_square(direction: str, num_frames: int = 40, width: int = 96, height: int = 72, seed: int = 0) -> np.ndarray:
    """A bright square crossing a dark background in one direction: learnable only from motion."""
    rng = np.random.default_rng(seed)
    dx, dy = DIRECTIONS[direction]
    side = height // 3
    background = rng.integers(0, 60, size=3)
    colour = rng.integers(180, 256, size=3)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    frames[:] = background
    cx0 = rng.uniform(side, width - side) if dx == 0 else (side / 2 if dx > 0 else width - side / 2)
    cy0 = rng.uniform(side, height - side) if dy == 0 else (side / 2 if dy > 0 else height - side / 2)
    travel_x, travel_y = width - side, height - side
    for t in range(num_frames):
        cx = int(cx0 + dx * travel_x * t / (num_frames - 1))
        cy = int(cy0 + dy * travel_y * t / (num_frames - 1))
        frames[t, max(cy - side // 2, 0) : cy + side // 2, max(cx - side // 2, 0) : cx + side // 2] = colour
    return frames


def numbered_frames(num_frames: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Frame t is filled with grey level 4*t (+ a bar), so a decoded frame tells its own index."""
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frames[t] = (4 * t) % 256
    return frames


def frame_index_of(frame: np.ndarray) -> int:
    """Inverse of `numbered_frames` (robust to codec noise)."""
    return int(round(float(frame.mean()) / 4))


def labelled_frames(num_frames: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Frame t shows t in two flat halves (t % 32 left, t // 32 right), readable through codec noise."""
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frames[t, :, : width // 2] = 8 * (t % 32) + 4
        frames[t, :, width // 2 :] = 8 * (t // 32) + 4
    return frames


def label_of(frame: np.ndarray, channels_first: bool = False) -> int:
    """Inverse of `labelled_frames` for an (H, W, 3) frame, or (3, H, W) with ``channels_first``."""
    grey = frame.mean(axis=0) if channels_first else frame.mean(axis=2)
    width = grey.shape[1]
    left = float(grey[:, : width // 2 - 2].mean())
    right = float(grey[:, width // 2 + 2 :].mean())
    return int(round((left - 4) / 8)) + 32 * int(round((right - 4) / 8))


def write_vfr_video(path: Path, stamps_ms: list[int]) -> Path:
    """Frame i is shown from stamps_ms[i] (time base 1/1000), keyframes every 4 frames."""
    frames = labelled_frames(len(stamps_ms))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.gop_size = 4
        stream.bit_rate = 2_000_000
        for frame_array, stamp in zip(frames, stamps_ms):
            frame = av.VideoFrame.from_ndarray(frame_array, format="rgb24")
            frame.pts, frame.time_base = stamp, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
