"""Open videos with PyAV and decode only the frames a clip needs.

Why this module exists: the guide's stack decodes every frame from the start and converts
each one to a full-size RGB array before resizing. Here a read seeks to the keyframe before
the first wanted frame, stops after the last one, and converts + resizes in one swscale call.
Frame indices are time based (``round(t * fps)``), so variable-frame-rate files map onto the
same index space as constant-rate ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from vidcls.errors import VideoReadError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")

# swscale's default (bicubic) costs about three times bilinear when upscaling, for no gain here.
_INTERPOLATION = "BILINEAR"


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, as displayed (width/height already account for rotation)."""

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    codec: str
    rotation: int = 0


def is_video_file(path: Path) -> bool:
    """True when the extension is one vidcls reads."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def _open(path: str | Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
        raise VideoReadError(path, f"cannot open as a video ({_reason(error)})") from error
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "file holds no video stream")
    return container


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return text.split(": '")[0] if text else type(error).__name__


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def _rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation in multiples of 90 degrees (0 when absent)."""
    angle = getattr(frame, "rotation", 0) or 0
    return int(round(angle / 90.0)) % 4 * 90


def _count_frames(container: av.container.InputContainer, stream) -> int:
    """Count packets when the header does not say how many frames there are (mkv, webm)."""
    container.seek(0)
    return sum(1 for packet in container.demux(stream) if packet.size)


def probe_video(path: str | Path) -> VideoInfo:
    """Read the header and decode the first frame, so unreadable files fail here, not mid-training."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        try:
            first = next(container.decode(stream))
        except (av.error.FFmpegError, StopIteration) as error:
            raise VideoReadError(path, "no frame could be decoded (empty or corrupt file)") from error
        duration = _duration_seconds(container, stream)
        num_frames = stream.frames or int(round(duration * fps))
        if num_frames <= 0:
            num_frames = _count_frames(container, stream)
        if duration <= 0:
            duration = num_frames / fps
        rotation = _rotation(first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            path=str(path),
            num_frames=max(num_frames, 1),
            fps=fps,
            duration=duration,
            width=width,
            height=height,
            codec=stream.codec_context.name,
            rotation=rotation,
        )
    finally:
        container.close()


def _duration_seconds(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def resized_dims(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after scaling so the shorter side equals ``short_side``, aspect kept."""
    if width <= height:
        return short_side, max(1, int(round(height * short_side / width)))
    return max(1, int(round(width * short_side / height))), short_side


def read_frames(
    path: str | Path,
    indices: Sequence[int],
    *,
    short_side: int | None = None,
) -> np.ndarray:
    """Decode the frames at ``indices`` as uint8 RGB, shape (len(indices), H, W, 3).

    Indices may repeat and need not be sorted. Indices past the end of the video get the
    last frame, so a clip longer than the video still has the requested length. With
    ``short_side`` the frames are resized in swscale (aspect kept) during RGB conversion.
    """
    if len(indices) == 0:
        raise ValueError("read_frames needs at least one frame index")
    wanted = sorted(set(int(i) for i in indices))
    container = _open(path)
    try:
        stream = container.streams.video[0]
        frames = _decode_wanted(container, stream, wanted, path)
    except av.error.FFmpegError as error:
        raise VideoReadError(path, f"decoding failed ({_reason(error)})") from error
    finally:
        container.close()
    converted = {index: _to_rgb(frame, short_side) for index, frame in frames.items()}
    return np.stack([converted[int(i)] for i in indices])


# Wanted frames further apart than this are reached by a new seek rather than decoding the gap.
_SEEK_GAP_FRAMES = 150


def _segments(wanted: list[int]) -> list[list[int]]:
    """Split sorted indices where the gap is long enough that seeking beats decoding through it."""
    segments = [[wanted[0]]]
    for index in wanted[1:]:
        if index - segments[-1][-1] > _SEEK_GAP_FRAMES:
            segments.append([index])
        else:
            segments[-1].append(index)
    return segments


def _decode_wanted(container, stream, wanted: list[int], path) -> dict[int, av.VideoFrame]:
    """Map each wanted index to a decoded frame, one seek per far-apart run of indices."""
    frames: dict[int, av.VideoFrame] = {}
    for segment in _segments(wanted):
        frames.update(_decode_segment(container, stream, segment, path))
    return frames


def _decode_segment(container, stream, wanted: list[int], path) -> dict[int, av.VideoFrame]:
    fps = _stream_fps(stream)
    if wanted[0] > 0 and stream.time_base:
        start_time = stream.start_time or 0
        target = start_time + int(wanted[0] / fps / stream.time_base)
        container.seek(target, stream=stream, backward=True, any_frame=False)
        frames = _collect(container, stream, wanted, fps)
        if frames is not None:
            return frames
    container.seek(stream.start_time or 0, stream=stream)
    frames = _collect(container, stream, wanted, fps, from_start=True)
    if not frames:
        raise VideoReadError(path, "no frame could be decoded (empty or corrupt file)")
    return frames


def _collect(container, stream, wanted: list[int], fps: float, from_start: bool = False):
    """Decode forward, giving each wanted index the first frame at or after it.

    Returns None when the seek landed after the first wanted frame (a bad index in the
    file), so the caller can decode from the start instead.
    """
    start_time = stream.start_time or 0
    pending = list(wanted)
    frames: dict[int, av.VideoFrame] = {}
    last = None
    for count, frame in enumerate(container.decode(stream)):
        if frame.pts is None:
            index = count
        else:
            index = int(round(float((frame.pts - start_time) * stream.time_base) * fps))
        if last is None and not from_start and index > pending[0]:
            return None
        last = frame
        while pending and pending[0] <= index:
            frames[pending.pop(0)] = frame
        if not pending:
            return frames
    if last is None:
        return None if not from_start else frames
    for index in pending:  # past the end: repeat the last frame
        frames[index] = last
    return frames


def _to_rgb(frame: av.VideoFrame, short_side: int | None) -> np.ndarray:
    """Convert to RGB in one swscale call, resizing there too, then apply display rotation."""
    rotation = _rotation(frame)
    if short_side is None:
        array = frame.to_ndarray(format="rgb24")
    else:
        stored_w, stored_h = frame.width, frame.height
        display_w, display_h = (stored_h, stored_w) if rotation in (90, 270) else (stored_w, stored_h)
        out_w, out_h = resized_dims(display_w, display_h, short_side)
        if rotation in (90, 270):
            out_w, out_h = out_h, out_w
        array = frame.reformat(
            width=out_w, height=out_h, format="rgb24", interpolation=_INTERPOLATION
        ).to_ndarray()
    if rotation:
        array = np.ascontiguousarray(np.rot90(array, k=rotation // 90))
    return array

