"""Which frames a clip takes: pure index arithmetic, no I/O.

Two ways to take ``num_frames`` frames from a video, saved with every model (`ClipSpec.sampling`)
so training, evaluation, prediction, serving and preview all read a video the same way:

- ``"segment"`` (the default): the video is cut into ``num_frames`` equal segments and one frame
  is taken from each, so a clip always covers the whole video (TSN; VideoMAE's
  Something-Something recipe). Training takes a random frame of each segment; a test clip takes
  the same position in every segment, and the first test clip takes each segment's first frame,
  exactly the frames ``transformers.pipeline("video-classification")`` gives a model that has a
  video processor (``np.arange(n) * total // n``). So the pipeline, called with no arguments,
  scores a vidcls model on what it was trained to see.
- ``"dense"``: ``num_frames`` consecutive frames every ``sample_rate`` frames, a short window
  at a random (training) or evenly spread (test) start, as the guide's pytorchvideo recipe does.
  When a video is shorter than a clip's span the clip is spread over the whole video instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from vidcls.data.clip_spec import ClipSpec

# Clips per video at test time, in `predict` and `evaluate`, so the accuracy eval reports is what predict gives.
DEFAULT_CLIPS = 4

Sampling = Literal["segment", "dense"]
SAMPLINGS: tuple[str, ...] = ("segment", "dense")
DEFAULT_SAMPLING: Sampling = "segment"


def check_sampling(sampling: str) -> None:
    """Refuse an unknown sampling name with the ones that exist."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")


def clip_span(num_frames: int, sample_rate: int) -> int:
    """Frames of video one dense clip covers."""
    return num_frames * sample_rate


def segment_indices(video_frames: int, num_frames: int, offsets: np.ndarray | float) -> np.ndarray:
    """Frame ``floor((i + offset_i) * video_frames / num_frames)`` of each segment i, offsets in [0, 1)."""
    positions = (np.arange(num_frames) + offsets) * video_frames / num_frames
    return np.minimum(np.floor(positions).astype(np.int64), max(video_frames - 1, 0))


def _clip_at(start: int, num_frames: int, sample_rate: int) -> np.ndarray:
    return start + np.arange(num_frames, dtype=np.int64) * sample_rate


def _whole_video(video_frames: int, num_frames: int) -> np.ndarray:
    return np.linspace(0, max(video_frames - 1, 0), num_frames).round().astype(np.int64)


def train_clip_indices(video_frames: int, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """One randomly placed clip: a random frame per segment, or a dense clip at a random start."""
    check_sampling(spec.sampling)
    if spec.sampling == "segment":
        return segment_indices(video_frames, spec.num_frames, rng.random(spec.num_frames))
    span = clip_span(spec.num_frames, spec.sample_rate)
    if video_frames < span:
        return _whole_video(video_frames, spec.num_frames)
    start = int(rng.integers(0, video_frames - span + 1))
    return _clip_at(start, spec.num_frames, spec.sample_rate)


def eval_clip_indices(video_frames: int, spec: ClipSpec, num_clips: int) -> list[np.ndarray]:
    """``num_clips`` deterministic clips that together cover the video: the test sampler.

    Segment: clip k takes the frame at k/num_clips of every segment (clip 0 is the pipeline's
    frames). Dense: clip starts spread evenly over the video; one clip is the centre clip, as
    VideoMAE / mmaction2 test on.
    """
    check_sampling(spec.sampling)
    if spec.sampling == "segment":
        return [segment_indices(video_frames, spec.num_frames, k / num_clips) for k in range(num_clips)]
    span = clip_span(spec.num_frames, spec.sample_rate)
    if video_frames < span:
        return [_whole_video(video_frames, spec.num_frames) for _ in range(num_clips)]
    last_start = video_frames - span
    if num_clips == 1:
        starts = [last_start // 2]
    else:
        starts = np.linspace(0, last_start, num_clips).round().astype(np.int64).tolist()
    return [_clip_at(int(start), spec.num_frames, spec.sample_rate) for start in starts]


def window_clip_indices(
    video_frames: int, fps: float, window_seconds: float, spec: ClipSpec
) -> list[tuple[float, float, np.ndarray]]:
    """One test clip per consecutive window of ``window_seconds``, sampled inside the window as a
    whole video would be: (start_s, end_s, indices)."""
    if window_seconds <= 0:
        raise ValueError(f"window must be a positive number of seconds, got {window_seconds}")
    window = max(1, int(round(window_seconds * fps)))
    windows = []
    for start in range(0, video_frames, window):
        length = min(window, video_frames - start)
        (clip,) = eval_clip_indices(length, spec, 1)
        windows.append((start / fps, (start + length) / fps, clip + start))
    return windows
