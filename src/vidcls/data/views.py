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
from typing import Iterator

import numpy as np
import torch

from vidcls.data.sampling import eval_clip_indices, train_clip_indices, window_clip_indices
from vidcls.data.clip_spec import ClipSpec
from vidcls.data.transforms import EvalTransform, TrainTransform
from vidcls.data.decode import read_clips, stream_frames
from vidcls.data.files import VideoInfo
from vidcls.data.kept_frames import KeptVideos
from vidcls.data.probe import read_video


# Windows scored per forward when a timeline streams through the model: few enough that their
# frames stay small, enough that the forward is not called once per window.
WINDOW_BATCH = 8

Span = tuple[float, float]
WindowBatch = tuple[list[Span], torch.Tensor]


@dataclass
class VideoViews:
    """Test views of one video: ``views`` (clips * crops, T, C, H, W) uint8, plus, when a window
    was asked for, ``windows``: the timeline's centre-crop clips, decoded only as they are
    iterated, as (spans in seconds, (windows, 1, T, C, H, W) uint8) batches of `WINDOW_BATCH`."""

    views: torch.Tensor
    info: VideoInfo
    windows: Iterator[WindowBatch] | None = None
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
    if len(clips) == 1:  # no copy: a second block per clip (2.4 MB for the guide's) grew a loader process's heap by 150 MB
        return torch.from_numpy(clips[0]).unsqueeze(0)
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
    """``clips`` test clips x ``crops`` crops of a video, decoded in one pass over the file, opened
    once (probed too, unless ``info``); with ``window``, one centre-crop clip per ``window``
    seconds, streamed from a second pass (`window_views`) as the caller iterates them."""
    if clips < 1:
        raise ValueError(f"clips must be at least 1, got {clips}")
    transform = EvalTransform(spec, crops)
    every_frame = lambda info: np.concatenate(eval_clip_indices(info.num_frames, spec, clips))  # noqa: E731
    info, frames = read_video(path, every_frame, resize=transform.decode_resize(), info=info)
    per_clip = frames.reshape(-1, spec.num_frames, *frames.shape[1:])
    views = torch.cat([transform(clip) for clip in per_clip])
    result = VideoViews(views, info, clip_indices=eval_clip_indices(info.num_frames, spec, clips))
    if window:
        result.windows = window_views(path, spec, window, info)
    return result


def window_views(
    path: str | Path, spec: ClipSpec, window: float, info: VideoInfo, batch: int = WINDOW_BATCH
) -> Iterator[WindowBatch]:
    """One centre-crop test clip per ``window`` seconds, ``batch`` windows at a time, as the file
    is decoded: a window is cropped as soon as its last frame arrives and its frames dropped, so
    memory stays flat in the video's length (benchmarks/long_video.py)."""
    windowed = window_clip_indices(info.num_frames, info.fps, window, spec)
    centre = EvalTransform(spec, 1)
    indices = np.concatenate([clip for _, _, clip in windowed])
    frames: list[np.ndarray | None] = [None] * spec.num_frames
    filled, done, spans, clips = 0, 0, [], []
    for image, rows in stream_frames(path, indices, resize=centre.decode_resize()):
        for row in rows:  # rows come in order: a window's rows all arrive before the next one's
            frames[row % spec.num_frames] = image
            filled += 1
            if filled == spec.num_frames:
                clips.append(centre(np.stack(frames)))
                spans.append(windowed[done][:2])
                filled, done = 0, done + 1
        if len(clips) >= batch:
            yield spans, torch.stack(clips)
            spans, clips = [], []
    if clips:
        yield spans, torch.stack(clips)
