"""What counts as a video file, and what probing one tells: plain data, without av or torch.

Apart from `probe` and `decode` so that scanning a dataset folder's names and building the CLI do not
import the decoder and torch (seconds) before a command needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".vob", ".ts", ".mts", ".m2ts")


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, as displayed (width/height already account for rotation).

    ``num_frames`` counts the frames that can be read: for a damaged file (truncated, or a
    decode error mid-stream) that is fewer than its header claims, and ``damage`` says why.
    """

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    codec: str
    rotation: int = 0
    damage: str | None = None


def is_video_file(path: Path) -> bool:
    """True when the extension is one vidcls reads."""
    return path.suffix.lower() in VIDEO_EXTENSIONS
