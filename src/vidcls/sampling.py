"""Which frames a clip takes: pure index arithmetic, no I/O.

A clip is ``num_frames`` frames taken every ``sample_rate`` frames, so it spans
``num_frames * sample_rate`` frames of video. When a video is shorter than that span the
clip is spread over the whole video instead (as pytorchvideo's uniform subsampling does),
so short videos still give ``num_frames`` distinct, ordered frames where they have them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# Clips per video at test time, in `predict` and `evaluate`, so the accuracy eval reports is what predict gives.
DEFAULT_CLIPS = 4

# "uniform": clips spread over the whole video (the default);
# "pipeline": the first num_frames consecutive frames, what transformers' pipeline reads by default.
Sampling = Literal["uniform", "pipeline"]


def clip_span(num_frames: int, sample_rate: int) -> int:
    """Frames of video one clip covers."""
    return num_frames * sample_rate


def _clip_at(start: int, num_frames: int, sample_rate: int) -> np.ndarray:
    return start + np.arange(num_frames, dtype=np.int64) * sample_rate


def _whole_video(video_frames: int, num_frames: int) -> np.ndarray:
    return np.linspace(0, max(video_frames - 1, 0), num_frames).round().astype(np.int64)


def random_clip_indices(
    video_frames: int, num_frames: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """One clip at a random start: the training sampler."""
    span = clip_span(num_frames, sample_rate)
    if video_frames < span:
        return _whole_video(video_frames, num_frames)
    start = int(rng.integers(0, video_frames - span + 1))
    return _clip_at(start, num_frames, sample_rate)


def uniform_clip_indices(
    video_frames: int, num_frames: int, sample_rate: int, num_clips: int
) -> list[np.ndarray]:
    """``num_clips`` clips whose starts are spread evenly over the video: the test sampler.

    With one clip it is the centre clip, as VideoMAE / mmaction2 test on.
    """
    span = clip_span(num_frames, sample_rate)
    if video_frames < span:
        return [_whole_video(video_frames, num_frames) for _ in range(num_clips)]
    last_start = video_frames - span
    if num_clips == 1:
        starts = [last_start // 2]
    else:
        starts = np.linspace(0, last_start, num_clips).round().astype(np.int64).tolist()
    return [_clip_at(int(start), num_frames, sample_rate) for start in starts]


def pipeline_clip_indices(num_frames: int, sample_rate: int = 1) -> np.ndarray:
    """The frames ``transformers.pipeline("video-classification")`` reads: the video's start."""
    return np.linspace(0, num_frames * sample_rate - 1, num=num_frames, dtype=np.int64)


def window_clip_indices(
    video_frames: int, fps: float, window_seconds: float, num_frames: int, sample_rate: int
) -> list[tuple[float, float, np.ndarray]]:
    """One centred clip per consecutive window of ``window_seconds``: (start_s, end_s, indices)."""
    window = max(1, int(round(window_seconds * fps)))
    windows = []
    for start in range(0, video_frames, window):
        length = min(window, video_frames - start)
        (clip,) = uniform_clip_indices(length, num_frames, sample_rate, 1)
        windows.append((start / fps, (start + length) / fps, clip + start))
    return windows
