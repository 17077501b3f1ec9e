"""Decode only the frames a clip needs, as a player shows them, with PyAV.

Why: the guide's stack decodes every frame from the start and converts each one to a full-size
RGB array before resizing. Here a read seeks to the keyframe before the first wanted frame,
seeks again wherever the container's keyframe index says a keyframe skips part of a gap between
wanted frames, stops after the last one, and converts frames as they are decoded (at most 16
held at a time, so memory follows the output, not the video's length). `read_frames` gives
full frames (evaluation, prediction), `read_clips` training crops (`vidcls.data.crop`), and
`read_all_frames` / `cut_clips` the frames training keeps in memory (`vidcls.data.kept_frames`).

"Frame N of a video" means one thing everywhere (probe, sampling, training's kept frames,
evaluation, prediction, windows, serving, preview): the frame a player shows at N / fps seconds
after the first frame it shows, counted as ``round((pts - start) * fps)`` (`FrameClock`). Frames a
player does not show are not counted: the pre-roll an MP4 edit list hides (a ``-c copy`` cut),
and nothing before the stream's first timestamp (MPEG-PS, or an MKV whose clock starts late).
Decoding from the start rewinds the file to its first byte rather than seeking to the stream's
start time, which in an MPEG program stream lands on the second GOP. Variable-frame-rate files
map onto the same time-based index space as constant-rate ones. Frames are as displayed:
rotation applied, and anamorphic pixels (a sample aspect ratio other than 1) scaled to the
display width as they are decoded, so every later step sees square pixels.

A packet the decoder refuses is skipped and decoding goes on, as ffmpeg does; its frames are
counted as lost and the file is named as damaged (`damage_found`). Everything runs on one thread
per call: the DataLoader already runs one worker process per core, and FFmpeg's frame threads
(or swscale's) only add CPU time on runs this short.
"""


from __future__ import annotations


import bisect
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vidcls.data.crop import (
    INTERPOLATION, ClipWindow, Resize, WindowConverter, compact_frame, display_width, frame_rotation,
    resize_frames, shrink_frame, to_rgb,
)
from vidcls.errors import VideoReadError

logger = logging.getLogger(__name__)


def open_video(path: str | Path) -> av.container.InputContainer:
    """The file opened for its first video stream, decoded on one thread; `VideoReadError` naming
    the file when it is no video."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
        raise VideoReadError(path, f"cannot open as a video ({ffmpeg_reason(error)})") from error
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "file holds no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "SLICE"  # FRAME threads cost more CPU than they save on short runs
    stream.codec_context.thread_count = 1
    return container


def ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's words for the problem, without the errno number and the path we already name."""
    text = getattr(error, "strerror", None) or str(error).strip()
    return text.split(": '")[0] if text else type(error).__name__


def stream_fps(stream: av.video.stream.VideoStream) -> float:
    """The stream's frame rate as the container states it (25 when it states none)."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def rewind(container: av.container.InputContainer) -> None:
    """Back to the first frame: a seek to 0, not to the stream's start time, which in an MPEG
    program stream lands on the keyframe after the first GOP."""
    container.seek(0)


@dataclass
class Losses:
    """Frames a read could not decode (counted as the gap they leave in the frame indices), and why."""

    frames: int = 0
    cause: str | None = None

    def damage(self) -> str | None:
        """How a read names the file's damage, or None when nothing was lost."""
        if self.cause is None:
            return None
        lost = f"{self.frames} frames" if self.frames else "frames"
        return f"{lost} could not be decoded ({self.cause}) in the part read; the others are used"


def shown_frames(
    container, stream, losses: Losses, clock: FrameClock | None = None, wanted: Sequence[int] = ()
) -> Iterator[av.VideoFrame]:
    """The stream's frames from where the demuxer stands, as a player shows them.

    A packet the decoder refuses is skipped and decoding goes on (ffmpeg's behaviour); the frames
    it held are added to ``losses`` as the indices missing between the first and last frame this
    run gave (with ``clock``). A demuxer error ends the stream. Anamorphic frames come out scaled
    to square pixels. With ``wanted`` (sorted indices) and ``clock``, frames that no wanted index
    uses and that no other frame is decoded from are not decoded (`_UnwantedFrames`).
    """
    display = _SquarePixels(stream)
    unwanted = _UnwantedFrames(stream, clock, wanted) if wanted and clock is not None else None
    packets = container.demux(stream)
    failed, seen = False, set()
    try:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as error:
                losses.cause = losses.cause or f"reading stopped: {ffmpeg_reason(error)}"
                return
            try:
                to_decode = unwanted.unpacked(packet) if unwanted else [packet]
            except av.error.FFmpegError as error:
                failed, losses.cause = True, losses.cause or f"bad packet: {ffmpeg_reason(error)}"
                continue
            for packet in to_decode:
                if unwanted is not None and (skipped := unwanted.skip(packet)) is not None:
                    seen.add(skipped)  # left out on purpose, not lost
                try:
                    decoded = stream.decode(packet)
                except av.error.FFmpegError as error:
                    failed, losses.cause = True, losses.cause or f"bad packet: {ffmpeg_reason(error)}"
                    continue
                for frame in decoded:
                    if clock is not None and frame.pts is not None:
                        seen.add(clock.index_at(frame.pts))
                    yield display(frame)
    finally:
        if unwanted is not None:
            unwanted.stop_skipping()
        if failed and seen:
            losses.frames += max(seen) - min(seen) + 1 - len(seen)


# Frames after a wanted index that are always decoded: a wanted index without a frame of its own
# (a variable frame rate, a dropped frame) takes the next frame shown, which must not be skipped.
_NEXT_FRAMES_KEPT = 2


class _UnwantedFrames:
    """Has the decoder skip the frames a read does not use and no other frame is decoded from:
    non-reference frames (most B-frames) whose index no wanted index needs, before the last one.

    Why: decoding runs through every frame between a keyframe and the frames wanted, and UCF101's
    Xvid AVIs are two-thirds B-frames with one keyframe in 300 frames: skipping the unwanted ones
    cut the CPU of reading 8 frames spread over such a file by 18% (benchmarks/speed.md),
    with the same pixels. A frame is known by its packet's timestamp, which is the one FFmpeg
    stamps on the frame; MPEG-4 part 2 files that pack a B-frame with the next frame in one packet
    ("packed bitstream", common in AVI) are first unpacked (FFmpeg's ``mpeg4_unpack_bframes``), so
    every packet holds one frame. A decoder that cannot skip decodes as before.
    """

    def __init__(self, stream, clock: FrameClock, wanted: Sequence[int]) -> None:
        self.context, self.clock = stream.codec_context, clock
        self.needed = {index + step for index in wanted for step in range(_NEXT_FRAMES_KEPT + 1)}
        self.last = max(wanted)
        packed = self.context.name == "mpeg4"
        self.unpack = av.bitstream.BitStreamFilterContext("mpeg4_unpack_bframes", stream) if packed else None

    def unpacked(self, packet: av.Packet) -> list[av.Packet]:
        """The packet as the decoder takes it: unpacked, and at the end of the stream what the filter held."""
        if self.unpack is None:
            return [packet]
        if not packet.size:  # the end of the stream: drain the filter, then let the decoder drain
            return [*self.unpack.filter(None), packet]
        return self.unpack.filter(packet)

    def skip(self, packet: av.Packet) -> int | None:
        """Sets whether the decoder may skip this packet's frame; its index when it may."""
        index = None if packet.pts is None else self.clock.index_at(packet.pts)
        skip = index is not None and index < self.last and index not in self.needed
        self.context.skip_frame = "NONREF" if skip else "DEFAULT"
        return index if skip else None

    def stop_skipping(self) -> None:
        self.context.skip_frame = "DEFAULT"


class _SquarePixels:
    """Scales frames of a stream with non-square pixels to the width a player shows them at
    (stored width x sample aspect ratio, height kept), in their own YUV format; others pass."""

    def __init__(self, stream) -> None:
        ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        self.ratio = float(ratio) if ratio and ratio > 0 else 1.0
        self.reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if abs(self.ratio - 1.0) < 1e-3 or frame_rotation(frame):
            return frame
        width = display_width(frame.width, self.ratio, frame.format.name)
        square = self.reformatter.reformat(
            frame, width, frame.height, interpolation=INTERPOLATION, src_color_range=frame.color_range,
            dst_color_range=frame.color_range, threads=1,
        )
        square.colorspace, square.color_range = frame.colorspace, frame.color_range
        return square


def read_frames(
    path: str | Path,
    indices: Sequence[int],
    *,
    resize: Resize | None = None,
) -> np.ndarray:
    """Decode the frames at ``indices`` as uint8 RGB, shape (len(indices), H, W, 3).

    Indices may repeat and need not be sorted. Indices past the end of the video get the
    last frame, so a clip longer than the video still has the requested length. With
    ``resize`` the frames are resized (a short side, or height x width) as transformers' VideoMAE
    processor resizes them (see `resize_frames`).
    """
    with contextlib.closing(open_video(path)) as container, reading(path) as losses:
        return read_open_frames(container, path, indices, resize, losses)


def read_open_frames(
    container: av.container.InputContainer,
    path: str | Path,
    indices: Sequence[int],
    resize: Resize | None,
    losses: Losses,
) -> np.ndarray:
    """`read_frames` on an open container."""
    out = None
    for image, where in _converted(container, path, indices, resize, losses):
        if out is None:
            out = np.empty((len(indices), *image.shape), np.uint8)
        out[where] = image
    return out


def stream_frames(
    path: str | Path, indices: Sequence[int], *, resize: Resize | None = None
) -> Iterator[tuple[np.ndarray, list[int]]]:
    """The frames of `read_frames`, one at a time as they are decoded, each with the positions of
    ``indices`` it fills (in index order): a caller that consumes them as they come (prediction's
    windows) holds a few frames, not the whole list. Bad packets are logged as `read_frames` does."""
    with contextlib.closing(open_video(path)) as container, reading(path) as losses:
        yield from _converted(container, path, indices, resize, losses)


def _converted(
    container: av.container.InputContainer, path: str | Path, indices: Sequence[int], resize: Resize | None,
    losses: Losses,
) -> Iterator[tuple[np.ndarray, list[int]]]:
    """Decoded frames as RGB (resized as ``resize`` says), each with its output rows, converted in batches."""
    reformatter = VideoReformatter()
    for frames, rows in _decoded(container, path, indices, _CONVERT_BATCH, losses):
        rgb = [to_rgb(frame, None, reformatter) for frame in frames]
        if resize is None:
            converted = rgb
        elif len({image.shape for image in rgb}) == 1:
            converted = resize_frames(np.stack(rgb), resize)
        else:
            converted = [resize_frames(image[None], resize)[0] for image in rgb]
        yield from zip(converted, rows)


def read_clip(path: str | Path, indices: Sequence[int], window: ClipWindow) -> np.ndarray:
    """Decode the frames at ``indices``, keeping only ``window``: uint8 RGB (len(indices), 3, size, size).

    The pixels of `read_frames` with ``resize=window.short_side`` followed by the crop
    (and flip), give or take a pixel of alignment and the filter (swscale's bilinear here),
    for a fraction of the work: only the source pixels under the window are scaled, straight
    to the crop size, into planar RGB written in place.
    """
    return read_clips(path, [(indices, window)])[0]


def read_clips(
    path: str | Path, clips: Sequence[tuple[Sequence[int], ClipWindow]], shrink_to: int | None = None
) -> list[np.ndarray]:
    """`read_clip` for several (indices, window) clips of one file, decoded in one pass.

    Why: a segment clip spreads its frames over the whole video, so on H.264 with B-frames
    reading one decodes nearly every frame; a second clip of the same video then costs only its
    scaling. Windows may differ in size; each clip is (len(indices), 3, size, size). With
    ``shrink_to`` each frame is first scaled down as `read_all_frames` keeps it
    (`shrink_frame`), so a clip cut from kept frames (`cut_clips`) has exactly these pixels.
    """
    writer = _ClipWriter(clips)
    with contextlib.closing(open_video(path)) as container, reading(path) as losses:
        for (frame,), (rows,) in _decoded(container, path, writer.every_index, 1, losses):
            writer.write(shrink_frame(frame, shrink_to), rows)
    return writer.outs


def read_all_frames(path: str | Path, num_frames: int, shrink_to: int | None = None) -> list[av.VideoFrame]:
    """Every frame of a video as `read_clips` would use it: item i is the (shrunk) frame a clip
    asking for frame i gets, for ``num_frames`` indices (its probed count)."""
    kept: list[av.VideoFrame | None] = [None] * num_frames
    with contextlib.closing(open_video(path)) as container, reading(path) as losses:
        for (frame,), (rows,) in _decoded(container, path, range(num_frames), 1, losses):
            small = shrink_frame(frame, shrink_to)
            small = compact_frame(small) if small is frame else small  # kept for good: no decoder padding
            for row in rows:
                kept[row] = small
    return kept


def cut_clips(frames: Sequence[av.VideoFrame], clips: Sequence[tuple[Sequence[int], ClipWindow]]) -> list[np.ndarray]:
    """`read_clips` from a video's frames kept by `read_all_frames`, without decoding; indices
    past the end get the last frame, as when decoding."""
    writer = _ClipWriter(clips)
    rows: dict[int, list[int]] = {}
    for row, index in enumerate(writer.every_index):
        rows.setdefault(min(int(index), len(frames) - 1), []).append(row)
    for index, index_rows in rows.items():
        writer.write(frames[index], index_rows)
    return writer.outs


class _ClipWriter:
    """Fills each clip's output from frames given with their rows of the clips' concatenated indices."""

    def __init__(self, clips: Sequence[tuple[Sequence[int], ClipWindow]]) -> None:
        lengths = [len(indices) for indices, _ in clips]
        self.starts = np.cumsum([0, *lengths])
        self.converters = [WindowConverter(window) for _, window in clips]
        self.outs = [np.empty((n, 3, window.size, window.size), np.uint8) for n, (_, window) in zip(lengths, clips)]
        self.every_index = [index for indices, _ in clips for index in indices]

    def write(self, frame: av.VideoFrame, rows: list[int]) -> None:
        for clip, clip_rows in _rows_by_clip(rows, self.starts):
            out = self.outs[clip]
            self.converters[clip](frame, out[clip_rows[0]])
            out[clip_rows[1:]] = out[clip_rows[0]]


def _rows_by_clip(rows: list[int], starts: np.ndarray) -> Iterator[tuple[int, list[int]]]:
    """Rows of the concatenated index list, as (clip, rows within that clip)."""
    by_clip: dict[int, list[int]] = {}
    for row in rows:
        clip = int(np.searchsorted(starts, row, side="right")) - 1
        by_clip.setdefault(clip, []).append(row - int(starts[clip]))
    return iter(by_clip.items())


# Frames converted together by `read_frames`: torch's antialiased resize costs about half as
# much per frame on a batch as on one frame, and 16 decoded frames stay small (3 MB at 1080p).
_CONVERT_BATCH = 16


# Damage reads of this process found, by path: named once in the log (an epoch does not name a
# file again), and asked for by `damage_found` (a timeline's windows are read after the clips).
_FOUND_DAMAGE: dict[str, str] = {}


def damage_found(path: str | Path) -> str | None:
    """How the reads of ``path`` in this process found it damaged (frames lost), or None."""
    return _FOUND_DAMAGE.get(str(path))


@contextlib.contextmanager
def reading(path: str | Path) -> Iterator[Losses]:
    """The frames a read of ``path`` loses to bad packets, recorded for `damage_found` and named
    once in the log (training's log shows a damaged file when it is first read); FFmpeg's errors
    re-raised as `VideoReadError`."""
    losses = Losses()
    try:
        yield losses
    except av.error.FFmpegError as error:
        raise VideoReadError(path, f"decoding failed ({ffmpeg_reason(error)})") from error
    if losses.cause and str(path) not in _FOUND_DAMAGE:
        _FOUND_DAMAGE[str(path)] = losses.damage()
        logger.warning("damaged %s: %s", path, losses.damage())


def _decoded(
    container: av.container.InputContainer, path: str | Path, indices: Sequence[int], batch: int, losses: Losses
) -> Iterator[tuple[list[av.VideoFrame], list[list[int]]]]:
    """Decode the frames ``indices`` ask for, ``batch`` at a time, each with the output rows it fills."""
    if len(indices) == 0:
        raise ValueError(f"{path}: no frame indices to read")
    rows: dict[int, list[int]] = {}
    for row, index in enumerate(indices):
        rows.setdefault(int(index), []).append(row)
    frames: list[av.VideoFrame] = []
    frame_rows: list[list[int]] = []
    stream = container.streams.video[0]
    for frame, frame_indices in _wanted_frames(container, stream, sorted(rows), path, losses):
        wanted_rows = [row for index in frame_indices for row in rows[index]]
        if frames and frame is frames[-1]:  # the last frame also serves the indices past the end
            frame_rows[-1].extend(wanted_rows)
            continue
        if len(frames) == batch:
            yield frames, frame_rows
            frames, frame_rows = [], []
        frames.append(frame)
        frame_rows.append(wanted_rows)
    if frames:
        yield frames, frame_rows


# Without a keyframe index, wanted frames further apart than this are reached by a new seek
# rather than decoding the gap.
_SEEK_GAP_FRAMES = 150


# With one, a seek is made when the keyframe it lands on skips more than this many frames that
# decoding on would pass through. A seek flushes the decoder: on H.264 with B-frames it costs
# about what decoding 6 frames does (the threshold's measurements: benchmarks/README.md, "Figures
# behind defaults").
_SEEK_SKIPS_FRAMES = 8


def _segments(wanted: list[int], keyframes: list[int] | None) -> list[list[int]]:
    """Split sorted indices where seeking beats decoding through the gap.

    With the container's keyframe index, that is wherever a keyframe lies far enough past the
    previous wanted frame: a segment clip spread over a whole video (8 frames of 175, a
    keyframe every 12) then decodes ~50 frames instead of all of them.
    """
    segments = [[wanted[0]]]
    for index in wanted[1:]:
        previous = segments[-1][-1]
        if keyframes is None:
            seek = index - previous > _SEEK_GAP_FRAMES
        else:
            landing = keyframes[bisect.bisect_right(keyframes, index) - 1] if keyframes[0] <= index else 0
            seek = landing - previous > _SEEK_SKIPS_FRAMES
        if seek:
            segments.append([index])
        else:
            segments[-1].append(index)
    return segments


def _keyframe_indices(stream, clock: FrameClock) -> list[int] | None:
    """Sorted frame indices of the keyframes in the container's index, or None when it has none
    (the demuxer reads it with the header: AVI idx1, MP4 stss, MKV cues)."""
    keyframes = sorted({clock.index_at(entry.timestamp) for entry in stream.index_entries if entry.is_keyframe})
    return keyframes or None


class FrameClock:
    """Frame index <-> timestamp of one stream, in integer-and-float arithmetic (Fraction is slow)."""

    def __init__(self, stream) -> None:
        self.fps = stream_fps(stream)
        self.start = stream.start_time or 0
        time_base = stream.time_base
        self.num, self.den = (time_base.numerator, time_base.denominator) if time_base else (0, 1)

    def index(self, frame: av.VideoFrame, count: int) -> int:
        """``round(t * fps)`` of the frame, or its decode count when it has no timestamp."""
        if frame.pts is None or not self.num:
            return count
        return self.index_at(frame.pts)

    def index_at(self, pts: int) -> int:
        """``round(t * fps)`` of a timestamp."""
        return int(round((pts - self.start) * self.num * self.fps / self.den))

    def pts(self, index: int) -> int:
        """The timestamp at which frame ``index`` starts."""
        return self.start + int(index * self.den / (self.fps * self.num))


def _wanted_frames(
    container, stream, wanted: list[int], path, losses: Losses
) -> Iterator[tuple[av.VideoFrame, list[int]]]:
    """Yield (frame, the wanted indices it serves), in order, one seek per far-apart run of indices."""
    clock = FrameClock(stream)
    keyframes = _keyframe_indices(stream, clock) if clock.num else None
    for segment in _segments(wanted, keyframes):
        yield from _decode_segment(container, stream, segment, clock, path, losses)


def _decode_segment(container, stream, wanted: list[int], clock: FrameClock, path, losses: Losses):
    if wanted[0] > 0 and clock.num:
        container.seek(clock.pts(wanted[0]), stream=stream, backward=True, any_frame=False)
        frames = shown_frames(container, stream, losses, clock, wanted)
        first = next(frames, None)
        # A seek landing after the first wanted frame (a bad index in the file), or on frames
        # without timestamps, cannot be trusted: decode from the start instead.
        if first is not None and first.pts is not None and clock.index(first, 0) <= wanted[0]:
            yield from _assign(_chain(first, frames), wanted, clock)
            return
    rewind(container)
    found = False
    for item in _assign(shown_frames(container, stream, losses, clock, wanted), wanted, clock):
        found = True
        yield item
    if not found:
        raise VideoReadError(path, "no frame could be decoded (empty or corrupt file)")


def _chain(first: av.VideoFrame, rest: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    yield first
    yield from rest


def _assign(frames: Iterator[av.VideoFrame], wanted: list[int], clock: FrameClock):
    """Give each wanted index the first frame at or after it, stopping after the last one;
    indices past the end of the video get its last frame."""
    position, last = 0, None
    for count, frame in enumerate(frames):
        index = clock.index(frame, count)
        last, taken = frame, position
        while position < len(wanted) and wanted[position] <= index:
            position += 1
        if position > taken:
            yield frame, wanted[taken:position]
        if position == len(wanted):
            return
    if last is not None:
        yield last, wanted[position:]
