"""The one preprocessing stage: a video file and a `ClipSpec` in, the uint8 views a model takes out.

Training's dataset, evaluation, prediction, timelines, the server, the GIF preview and the
benchmark all call these functions, so a video is sampled, resized and cropped the same way
wherever it is scored. Frames stay uint8 here; `transforms.normalize_batch` makes floats on the
device. A file is opened once: probed and decoded in the same open, or, when the caller already
probed it (a dataset's records), decoded alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidcls.sampling import eval_clip_indices, train_clip_indices, window_clip_indices
from vidcls.transforms import ClipSpec, EvalTransform, TrainTransform
from vidcls.video_io import KeptVideos, VideoInfo, read_clips, read_video


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
    kept: KeptVideos | None = None,
) -> torch.Tensor:
    """``count`` random training clips of one video, uint8 (count, T, C, H, W), decoded in one
    pass (or cut from ``kept`` frames): each clip's frames, scale, crop and flip drawn by
    ``rng``, in that order. Frames are first scaled down to the largest short side training
    uses, whether kept or not, so a clip's pixels never depend on what memory held."""
    draws = [
        (train_clip_indices(info.num_frames, spec, rng), transform.sample_window(info.width, info.height, rng))
        for _ in range(count)
    ]
    shrink_to = transform.short_side_range[1]
    clips = kept.read_clips(path, info, draws, shrink_to) if kept else read_clips(path, draws, shrink_to)
    return torch.stack([torch.from_numpy(clip) for clip in clips])


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
    given, all decoded in one pass over the file, opened once (probed too, unless ``info``)."""
    if clips < 1:
        raise ValueError(f"clips must be at least 1, got {clips}")
    transform = EvalTransform(spec, crops)
    every_frame = lambda info: np.concatenate(_all_clips(*_test_clips(info, spec, clips, window)))  # noqa: E731
    info, frames = read_video(path, every_frame, short_side=transform.decode_short_side(), info=info)
    whole, windowed = _test_clips(info, spec, clips, window)
    per_clip = frames.reshape(-1, spec.num_frames, *frames.shape[1:])  # whole-video clips, then windows
    views = torch.cat([transform(clip) for clip in per_clip[:clips]])
    result = VideoViews(views, info, clip_indices=whole)
    if windowed:
        centre = EvalTransform(spec, 1)
        result.windows = torch.stack([centre(clip) for clip in per_clip[clips:]])
        result.spans = [(start, end) for start, end, _ in windowed]
    return result


def _test_clips(
    info: VideoInfo, spec: ClipSpec, clips: int, window: float | None
) -> tuple[list[np.ndarray], list[tuple[float, float, np.ndarray]]]:
    """Frame indices of the whole-video test clips, and (start_s, end_s, indices) per window."""
    whole = eval_clip_indices(info.num_frames, spec, clips)
    windowed = window_clip_indices(info.num_frames, info.fps, window, spec) if window else []
    return whole, windowed


def _all_clips(whole: list[np.ndarray], windowed: list[tuple[float, float, np.ndarray]]) -> list[np.ndarray]:
    return whole + [indices for _, _, indices in windowed]
