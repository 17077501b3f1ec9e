"""The one preprocessing stage: a video file and a `ClipSpec` in, the uint8 views a model takes out.

Training's dataset, evaluation, prediction, timelines, the server, the GIF preview and the
benchmark all call these functions, so a video is sampled, resized and cropped the same way
wherever it is scored. Frames stay uint8 here; `transforms.normalize_batch` makes floats on the
device. A caller that already probed the file (a dataset's records) passes its `VideoInfo`, so
the file is opened once for the frames alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidcls.sampling import eval_clip_indices, train_clip_indices, window_clip_indices
from vidcls.transforms import ClipSpec, EvalTransform, TrainTransform
from vidcls.video_io import VideoInfo, probe_video, read_clips, read_frames


@dataclass
class VideoViews:
    """Test views of one video: ``views`` (clips * crops, T, C, H, W) uint8, plus, when a window
    was asked for, ``windows`` (windows, 1, T, C, H, W) uint8 (centre crop) and their ``spans``
    in seconds."""

    views: torch.Tensor
    info: VideoInfo
    windows: torch.Tensor | None = None
    spans: list[tuple[float, float]] | None = None
    clip_indices: list[np.ndarray] | None = None


def train_views(
    path: str | Path,
    info: VideoInfo,
    spec: ClipSpec,
    transform: TrainTransform,
    rng: np.random.Generator,
    count: int = 1,
) -> torch.Tensor:
    """``count`` random training clips of one video, uint8 (count, T, C, H, W), decoded in one
    pass: each clip's frames, scale, crop and flip drawn by ``rng``, in that order."""
    draws = [
        (train_clip_indices(info.num_frames, spec, rng), transform.sample_window(info.width, info.height, rng))
        for _ in range(count)
    ]
    return torch.stack([torch.from_numpy(clip) for clip in read_clips(path, draws)])


def video_views(
    path: str | Path,
    spec: ClipSpec,
    *,
    clips: int = 1,
    crops: int = 1,
    window: float | None = None,
    info: VideoInfo | None = None,
) -> VideoViews:
    """``clips`` test clips x ``crops`` crops of a video, and one clip per ``window`` seconds when
    given, all decoded in one pass over the file."""
    if clips < 1:
        raise ValueError(f"clips must be at least 1, got {clips}")
    transform = EvalTransform(spec, crops)
    info = info or probe_video(path)
    whole = eval_clip_indices(info.num_frames, spec, clips)
    windowed = window_clip_indices(info.num_frames, info.fps, window, spec) if window else []
    every_clip = whole + [indices for _, _, indices in windowed]
    frames = read_frames(path, np.concatenate(every_clip), short_side=transform.decode_short_side())
    per_clip = frames.reshape(len(every_clip), spec.num_frames, *frames.shape[1:])
    views = torch.cat([transform(clip) for clip in per_clip[:clips]])
    result = VideoViews(views, info, clip_indices=whole)
    if windowed:
        centre = EvalTransform(spec, 1)
        result.windows = torch.stack([centre(clip) for clip in per_clip[clips:]])
        result.spans = [(start, end) for start, end, _ in windowed]
    return result
