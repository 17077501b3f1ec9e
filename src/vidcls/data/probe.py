"""What a video file holds before a clip is read: frames a player shows, rate, size, rotation, damage.

Unreadable files fail here, not mid-training, and samplers of a truncated file only ask for
frames it has. A file with fewer than `MIN_FRAMES` shown frames (a still image named .mp4, a
1-frame video) is not a video and is refused with that reason; only a file where no frame
decodes is refused for damage. `read_video` probes and decodes in one open of the file.
"""


from __future__ import annotations


import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import av
import numpy as np

from vidcls.data.crop import Resize, frame_rotation
from vidcls.data.decode import (
    FrameClock, Losses, ffmpeg_reason, open_video, read_open_frames, reading, rewind, shown_frames, stream_fps,
)
from vidcls.data.files import VideoInfo
from vidcls.errors import VideoReadError

# A file whose readable frames fall short of its header's count by more than this share is
# reported as damaged (a frame or two short is ordinary for some muxers).
_DAMAGED_BELOW = 0.9


# Fewer shown frames than this and a file is not a video (a still image, or a single frame):
# a clip of it would repeat one picture, and a motion classifier's answer on it means nothing.
MIN_FRAMES = 2


def probe_video(path: str | Path, *, decode_all: bool = False) -> VideoInfo:
    """Read the header, decode the first frame and count the frames that can be read, so unreadable
    files fail here, not mid-training, and samplers of a truncated file only ask for frames it has.

    With ``decode_all`` every frame is decoded, so a bad packet in the middle of a file, which
    its index cannot show, is found and named (``vidcls data``, the health check, asks for it;
    elsewhere reads name the frames they lose as they go).
    """
    with contextlib.closing(open_video(path)) as container:
        return _probe(container, path, decode_all)


def read_video(
    path: str | Path,
    frame_indices: Callable[[VideoInfo], Sequence[int]],
    *,
    resize: Resize | None = None,
    info: VideoInfo | None = None,
) -> tuple[VideoInfo, np.ndarray]:
    """Probe a video and decode the frames ``frame_indices(info)`` asks for, opening the file once.

    Why: prediction needs the frame count to pick its frames, and opening, probing and closing,
    then opening again to decode, cost a second container open and header parse per file.
    ``info``, when the file was already probed, skips the probe. Frames as `read_frames`. The
    info returned names the file as damaged when this read lost frames to bad packets.
    """
    with contextlib.closing(open_video(path)) as container, reading(path) as losses:
        info = info or _probe(container, path)
        frames = read_open_frames(container, path, frame_indices(info), resize, losses)
    if losses.cause and not info.damage:
        info = replace(info, damage=losses.damage())
    return info, frames


def _probe(container: av.container.InputContainer, path: str | Path, decode_all: bool = False) -> VideoInfo:
    """`probe_video` on an open container."""
    stream = container.streams.video[0]
    fps = stream_fps(stream)
    first = next(shown_frames(container, stream, Losses()), None)
    if first is None:
        raise VideoReadError(path, "no frame could be decoded (empty or corrupt file)")
    num_frames, damage = _readable_frames(container, stream, decode_all)
    if num_frames < MIN_FRAMES:
        raise VideoReadError(path, _not_a_video(container, num_frames))
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
    if duration <= 0 or damage:
        duration = num_frames / fps
    rotation = frame_rotation(first)
    width, height = first.width, first.height
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(
        path=str(path),
        num_frames=num_frames,
        fps=fps,
        duration=duration,
        width=width,
        height=height,
        codec=stream.codec_context.name,
        rotation=rotation,
        damage=damage,
    )


def _not_a_video(container: av.container.InputContainer, num_frames: int) -> str:
    """Why a file with fewer than `MIN_FRAMES` frames is refused, naming a still image as one."""
    name = container.format.name
    if name.endswith("_pipe") or name.startswith("image2"):
        return f"a still image ({name.split('_')[0]}), not a video; a video needs at least {MIN_FRAMES} frames"
    return f"{num_frames} frame, not a video; a video needs at least {MIN_FRAMES} frames"


def _readable_frames(container, stream, decode_all: bool = False) -> tuple[int, str | None]:
    """The frames a player shows that can be read, and why the file is damaged (None when it is not).

    A whole file has one shown packet per frame (an edit list's pre-roll packets are marked
    as discarded). They are counted in the container's index when it lists every one inside
    the file's bytes (read with the header: no pass over the file), else by demuxing (reading
    the file, no decoding); a header without a count (MKV, WebM, MPEG-PS) claims what its
    packets and its duration span. Only when fewer turn up than the header claims, demuxing
    fails, or ``decode_all``, is the stream decoded to find out how far it really reads (some
    files pack two frames in a packet) and how many frames bad packets lose.
    """
    claimed, in_file = _indexed_frames(container, stream)
    whole, demux_error = 0 < claimed <= in_file, None
    if not whole:
        packets, demux_error = _count_packets(container, stream)
        if claimed <= 0:  # a variable-rate file spans more indices than it has packets
            claimed = max(packets, _span_frames(container, stream))
        whole = packets >= claimed and demux_error is None
    if whole and not decode_all:
        return max(claimed, 1), None
    readable, losses = _count_decodable(container, stream)
    if losses.frames:
        return readable, f"{losses.frames} of {claimed} frames could not be decoded ({losses.cause}); the others are used"
    if whole or (losses.cause is None and readable >= claimed * _DAMAGED_BELOW):
        return (max(claimed, 1) if whole else readable), None
    cause = losses.cause or demux_error or "the file ends early"
    return readable, f"the header claims {claimed} frames, {readable} can be read ({cause}); only those are used"


def _span_frames(container, stream) -> int:
    """Frame indices the container's duration spans from the first shown frame (0 when unknown).

    An MKV or WebM whose clock starts late (``-output_ts_offset``, ``-copyts``) gives as its
    duration the time its last frame ends, not the time it lasts.
    """
    if not container.duration:
        return 0
    seconds = container.duration / av.time_base
    start = (container.start_time or 0) / av.time_base
    if 0 < start < seconds:
        seconds -= start
    return int(round(seconds * stream_fps(stream)))


def _indexed_frames(container, stream) -> tuple[int, int]:
    """(frames the header claims are shown, shown frames the index lists inside the file's bytes).

    The header's count includes an edit list's hidden pre-roll, which the index marks as
    discarded; a file cut short keeps an index at its start (MP4's moov) that points past its end.
    """
    entries = stream.index_entries
    shown = [entry for entry in entries if entry.size and not entry.is_discard]
    claimed = stream.frames - (len(entries) - len(shown)) if len(entries) >= stream.frames > 0 else stream.frames
    file_size = container.size
    return claimed, sum(1 for entry in shown if entry.pos + entry.size <= file_size)


def _count_packets(container, stream) -> tuple[int, str | None]:
    """Shown packets of the stream (empty ones stand for dropped frames, discarded ones are an edit
    list's pre-roll), and the demuxer's error if any."""
    rewind(container)
    count = 0
    try:
        for packet in container.demux(stream):
            count += bool(packet.size) and not packet.is_discard
    except av.error.FFmpegError as error:
        return count, f"reading stopped: {ffmpeg_reason(error)}"
    return count, None


def _count_decodable(container, stream) -> tuple[int, Losses]:
    """Frames decoded from the start, as the index after the last one (time based, as `read_frames`
    counts), and what the decoder lost on the way."""
    rewind(container)
    clock, count, losses = FrameClock(stream), 0, Losses()
    for frame in shown_frames(container, stream, losses, clock):
        count = max(count, clock.index(frame, count) + 1)
    return max(count, 1), losses
