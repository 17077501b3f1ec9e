"""Open videos with PyAV and decode only the frames a clip needs.

Why this module exists: the guide's stack decodes every frame from the start and converts
each one to a full-size RGB array before resizing. Here a read seeks to the keyframe before
the first wanted frame, seeks again wherever the container's keyframe index says a keyframe
skips part of a gap between wanted frames, stops after the last one, and converts frames as
they are decoded (at most 16 held at a time, so memory follows the output, not the video's
length). `read_video` probes and decodes in one open of the file:

- `read_frames` (evaluation, prediction): swscale's unscaled YUV -> RGB path, then the same
  antialiased bilinear resize as transformers' VideoMAE processor (PIL) and torchvision, done
  by torch on uint8, so vidcls scores a video on the pixels the pipeline gives its model.
- `read_clip` / `read_clips` (training): only the source pixels under the random crop are scaled, straight to
  the crop size, in the same swscale call that converts to planar RGB, which is the
  (T, C, H, W) layout the model takes: no full-size frame and no transposing copy.
- `KeptVideos` (training): a short video is decoded once, its frames kept in memory scaled
  down to the largest training size, and later epochs cut their clips from them.

"Frame N of a video" means one thing everywhere (probe, sampling, training's kept frames,
evaluation, prediction, windows, serving, preview): the frame a player shows at N / fps seconds
after the first frame it shows, counted as ``round((pts - start) * fps)``. Frames a player does
not show are not counted: the pre-roll an MP4 edit list hides (a ``-c copy`` cut), and nothing
before the stream's first timestamp (MPEG-PS, or an MKV whose clock starts late). Decoding from
the start rewinds the file to its first byte rather than seeking to the stream's start time,
which in an MPEG program stream lands on the second GOP. Variable-frame-rate files map onto the
same time-based index space as constant-rate ones. Frames are as displayed: rotation applied,
and anamorphic pixels (a sample aspect ratio other than 1) scaled to the display width as they
are decoded, so every later step sees square pixels.

A packet the decoder refuses is skipped and decoding goes on, as ffmpeg does; its frames are
counted as lost, the file is named as damaged, and only a file where no frame decodes is refused.
A file with fewer than `MIN_FRAMES` shown frames (a still image named .mp4, a 1-frame video) is
not a video and is refused with that reason. Everything runs on one thread per call: the DataLoader
already runs one worker process per core, and FFmpeg's frame threads (or swscale's) only add
CPU time on runs this short.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vidcls.errors import VideoReadError
from vidcls.data.files import VideoInfo

logger = logging.getLogger(__name__)

# Training crops are scaled by swscale: its default (bicubic) costs about three times bilinear
# when upscaling, for no gain here.
_INTERPOLATION = "BILINEAR"
# A file whose readable frames fall short of its header's count by more than this share is
# reported as damaged (a frame or two short is ordinary for some muxers).
_DAMAGED_BELOW = 0.9
# Fewer shown frames than this and a file is not a video (a still image, or a single frame):
# a clip of it would repeat one picture, and a motion classifier's answer on it means nothing.
MIN_FRAMES = 2


def _open(path: str | Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
        raise VideoReadError(path, f"cannot open as a video ({_reason(error)})") from error
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "file holds no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "SLICE"  # FRAME threads double the CPU cost of decoding a 64-frame run
    stream.codec_context.thread_count = 1
    return container


def _reason(error: Exception) -> str:
    """FFmpeg's words for the problem, without the errno number and the path we already name."""
    text = getattr(error, "strerror", None) or str(error).strip()
    return text.split(": '")[0] if text else type(error).__name__


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def _rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation in multiples of 90 degrees (0 when absent)."""
    angle = getattr(frame, "rotation", 0) or 0
    return int(round(angle / 90.0)) % 4 * 90


def probe_video(path: str | Path, *, decode_all: bool = False) -> VideoInfo:
    """Read the header, decode the first frame and count the frames that can be read, so unreadable
    files fail here, not mid-training, and samplers of a truncated file only ask for frames it has.

    With ``decode_all`` every frame is decoded, so a bad packet in the middle of a file, which
    its index cannot show, is found and named (``vidcls data``, the health check, asks for it;
    elsewhere reads name the frames they lose as they go).
    """
    with contextlib.closing(_open(path)) as container:
        return _probe(container, path, decode_all)


def read_video(
    path: str | Path,
    frame_indices: Callable[[VideoInfo], Sequence[int]],
    *,
    short_side: int | None = None,
    info: VideoInfo | None = None,
) -> tuple[VideoInfo, np.ndarray]:
    """Probe a video and decode the frames ``frame_indices(info)`` asks for, opening the file once.

    Why: prediction needs the frame count to pick its frames, and opening, probing and closing,
    then opening again to decode, cost a second container open and header parse per file.
    ``info``, when the file was already probed, skips the probe. Frames as `read_frames`. The
    info returned names the file as damaged when this read lost frames to bad packets.
    """
    with contextlib.closing(_open(path)) as container, _reading(path) as losses:
        info = info or _probe(container, path)
        frames = _read_frames(container, path, frame_indices(info), short_side, losses)
    if losses.cause and not info.damage:
        info = replace(info, damage=losses.damage())
    return info, frames


def _probe(container: av.container.InputContainer, path: str | Path, decode_all: bool = False) -> VideoInfo:
    """`probe_video` on an open container."""
    stream = container.streams.video[0]
    fps = _stream_fps(stream)
    first = next(_frames(container, stream, _Losses()), None)
    if first is None:
        raise VideoReadError(path, "no frame could be decoded (empty or corrupt file)")
    num_frames, damage = _readable_frames(container, stream, decode_all)
    if num_frames < MIN_FRAMES:
        raise VideoReadError(path, _not_a_video(container, num_frames))
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
    if duration <= 0 or damage:
        duration = num_frames / fps
    rotation = _rotation(first)
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
    return int(round(seconds * _stream_fps(stream)))


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
    _rewind(container)
    count = 0
    try:
        for packet in container.demux(stream):
            count += bool(packet.size) and not packet.is_discard
    except av.error.FFmpegError as error:
        return count, f"reading stopped: {_reason(error)}"
    return count, None


def _count_decodable(container, stream) -> tuple[int, _Losses]:
    """Frames decoded from the start, as the index after the last one (time based, as `read_frames`
    counts), and what the decoder lost on the way."""
    _rewind(container)
    clock, count, losses = _Clock(stream), 0, _Losses()
    for frame in _frames(container, stream, losses, clock):
        count = max(count, clock.index(frame, count) + 1)
    return max(count, 1), losses


def _rewind(container: av.container.InputContainer) -> None:
    """Back to the first frame: a seek to 0, not to the stream's start time, which in an MPEG
    program stream lands on the keyframe after the first GOP."""
    container.seek(0)


@dataclass
class _Losses:
    """Frames a read could not decode (counted as the gap they leave in the frame indices), and why."""

    frames: int = 0
    cause: str | None = None

    def damage(self) -> str | None:
        """How a read names the file's damage, or None when nothing was lost."""
        if self.cause is None:
            return None
        lost = f"{self.frames} frames" if self.frames else "frames"
        return f"{lost} could not be decoded ({self.cause}) in the part read; the others are used"


def _frames(container, stream, losses: _Losses, clock: _Clock | None = None) -> Iterator[av.VideoFrame]:
    """The stream's frames from where the demuxer stands, as a player shows them.

    A packet the decoder refuses is skipped and decoding goes on (ffmpeg's behaviour); the frames
    it held are added to ``losses`` as the indices missing between the first and last frame this
    run gave (with ``clock``). A demuxer error ends the stream. Anamorphic frames come out scaled
    to square pixels.
    """
    display = _SquarePixels(stream)
    packets = container.demux(stream)
    failed, seen = False, set()
    try:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as error:
                losses.cause = losses.cause or f"reading stopped: {_reason(error)}"
                return
            try:
                decoded = stream.decode(packet)
            except av.error.FFmpegError as error:
                failed, losses.cause = True, losses.cause or f"bad packet: {_reason(error)}"
                continue
            for frame in decoded:
                if clock is not None and frame.pts is not None:
                    seen.add(clock.index_at(frame.pts))
                yield display(frame)
    finally:
        if failed and seen:
            losses.frames += max(seen) - min(seen) + 1 - len(seen)


class _SquarePixels:
    """Scales frames of a stream with non-square pixels to the width a player shows them at
    (stored width x sample aspect ratio, height kept), in their own YUV format; others pass."""

    def __init__(self, stream) -> None:
        ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        self.ratio = float(ratio) if ratio and ratio > 0 else 1.0
        self.reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if abs(self.ratio - 1.0) < 1e-3 or _rotation(frame):
            return frame
        width = display_width(frame.width, self.ratio, frame.format.name)
        square = self.reformatter.reformat(
            frame, width, frame.height, interpolation=_INTERPOLATION, src_color_range=frame.color_range,
            dst_color_range=frame.color_range, threads=1,
        )
        square.colorspace, square.color_range = frame.colorspace, frame.color_range
        return square


def display_width(width: int, sample_aspect: float, pixel_format: str = "rgb24") -> int:
    """The width a player shows ``width`` stored pixels at (ffmpeg's ``scale=iw*sar:ih``), even
    for chroma-subsampled formats."""
    shown = max(1, int(round(width * sample_aspect)))
    return shown + shown % 2 if _CHROMA_SHIFT.get(pixel_format, (0, 0))[0] else shown


def resized_dims(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after scaling so the shorter side equals ``short_side``, aspect kept.

    The long side is rounded down, as transformers' image processors, torchvision and
    pytorchvideo do (320x240 at 224 is 298x224).
    """
    if width <= height:
        return short_side, max(1, height * short_side // width)
    return max(1, width * short_side // height), short_side


@dataclass(frozen=True)
class ClipWindow:
    """The pixels a training clip keeps: each frame resized so its short side is ``short_side``,
    then the ``size`` x ``size`` square at (``top``, ``left``) of the resized frame, mirrored
    left-right when ``flip``."""

    short_side: int
    top: int
    left: int
    size: int
    flip: bool = False


def read_frames(
    path: str | Path,
    indices: Sequence[int],
    *,
    short_side: int | None = None,
) -> np.ndarray:
    """Decode the frames at ``indices`` as uint8 RGB, shape (len(indices), H, W, 3).

    Indices may repeat and need not be sorted. Indices past the end of the video get the
    last frame, so a clip longer than the video still has the requested length. With
    ``short_side`` the frames are resized (aspect kept) as transformers' VideoMAE processor
    resizes them (see `resize_short_side`).
    """
    with contextlib.closing(_open(path)) as container, _reading(path) as losses:
        return _read_frames(container, path, indices, short_side, losses)


def _read_frames(
    container: av.container.InputContainer,
    path: str | Path,
    indices: Sequence[int],
    short_side: int | None,
    losses: _Losses,
) -> np.ndarray:
    """`read_frames` on an open container."""
    out = None
    for image, where in _converted(container, path, indices, short_side, losses):
        if out is None:
            out = np.empty((len(indices), *image.shape), np.uint8)
        out[where] = image
    return out


def stream_frames(
    path: str | Path, indices: Sequence[int], *, short_side: int | None = None
) -> Iterator[tuple[np.ndarray, list[int]]]:
    """The frames of `read_frames`, one at a time as they are decoded, each with the positions of
    ``indices`` it fills (in index order): a caller that consumes them as they come (prediction's
    windows) holds a few frames, not the whole list. Bad packets are logged as `read_frames` does."""
    with contextlib.closing(_open(path)) as container, _reading(path) as losses:
        yield from _converted(container, path, indices, short_side, losses)


def _converted(
    container: av.container.InputContainer, path: str | Path, indices: Sequence[int], short_side: int | None,
    losses: _Losses,
) -> Iterator[tuple[np.ndarray, list[int]]]:
    """Decoded frames as RGB (resized to ``short_side``), each with its output rows, converted in batches."""
    reformatter = VideoReformatter()
    for frames, rows in _decoded(container, path, indices, _CONVERT_BATCH, losses):
        rgb = [_to_rgb(frame, None, reformatter) for frame in frames]
        if short_side is None:
            converted = rgb
        elif len({image.shape for image in rgb}) == 1:
            converted = resize_short_side(np.stack(rgb), short_side)
        else:
            converted = [resize_short_side(image[None], short_side)[0] for image in rgb]
        yield from zip(converted, rows)


def read_clip(path: str | Path, indices: Sequence[int], window: ClipWindow) -> np.ndarray:
    """Decode the frames at ``indices``, keeping only ``window``: uint8 RGB (len(indices), 3, size, size).

    The pixels of `read_frames` with ``short_side=window.short_side`` followed by the crop
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
    with contextlib.closing(_open(path)) as container, _reading(path) as losses:
        for (frame,), (rows,) in _decoded(container, path, writer.every_index, 1, losses):
            writer.write(shrink_frame(frame, shrink_to), rows)
    return writer.outs


def read_all_frames(path: str | Path, num_frames: int, shrink_to: int | None = None) -> list[av.VideoFrame]:
    """Every frame of a video as `read_clips` would use it: item i is the (shrunk) frame a clip
    asking for frame i gets, for ``num_frames`` indices (its probed count)."""
    kept: list[av.VideoFrame | None] = [None] * num_frames
    with contextlib.closing(_open(path)) as container, _reading(path) as losses:
        for (frame,), (rows,) in _decoded(container, path, range(num_frames), 1, losses):
            small = shrink_frame(frame, shrink_to)
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


def shrink_frame(frame: av.VideoFrame, short_side: int | None) -> av.VideoFrame:
    """The frame scaled down (swscale, same YUV format and colours) so its short side is at most
    ``short_side``; itself when already that small, when rotated, or in a format `read_clip`
    does not crop directly."""
    if short_side is None or min(frame.width, frame.height) <= short_side:
        return frame
    if frame.format.name not in _CHROMA_SHIFT or _rotation(frame):
        return frame
    width, height = resized_dims(frame.width, frame.height, short_side)
    small = VideoReformatter().reformat(
        frame, width, height, interpolation=_INTERPOLATION, src_color_range=frame.color_range,
        dst_color_range=frame.color_range, threads=1,
    )
    small.colorspace, small.color_range = frame.colorspace, frame.color_range
    return small


def _frame_bytes(frame: av.VideoFrame) -> int:
    """Memory a decoded frame's pixels take."""
    return sum(plane.buffer_size for plane in frame.planes)


class KeptVideos:
    """Training videos decoded once and kept in memory (as `read_all_frames` gives them), up to
    ``budget`` bytes; clips of a kept video are cut without decoding (`cut_clips`).

    Why: a segment clip of an H.264 video with B-frames decodes nearly the whole video, about
    29 CPU ms for a 3 s 256x192 clip, half of what the `motion` preset's training step costs,
    and training reads every video once per epoch for dozens of epochs. Frames are kept scaled
    down to the largest short side training asks for, so a few hundred short videos fit in a
    few hundred MB. Videos longer than ``max_frames``, or past the budget, are decoded per clip,
    from the same scaled-down frames: a clip has the same pixels whether its video was kept.
    """

    def __init__(self, budget: int, max_frames: int) -> None:
        self.budget, self.max_frames = budget, max_frames
        self.used = 0
        self.videos: dict[str, list[av.VideoFrame]] = {}
        self.full = False

    def read_clips(
        self, path: str | Path, info: VideoInfo, clips: Sequence[tuple[Sequence[int], ClipWindow]], shrink_to: int
    ) -> list[np.ndarray]:
        """`read_clips` of ``path``, from memory when it is kept; kept on first read when it fits."""
        frames = self.videos.get(str(path))
        if frames is None and self._may_keep(info, shrink_to):
            frames = read_all_frames(path, info.num_frames, shrink_to)
            self._keep(str(path), frames)
        if frames is None:
            return read_clips(path, clips, shrink_to)
        return cut_clips(frames, clips)

    def _may_keep(self, info: VideoInfo, shrink_to: int) -> bool:
        """Short enough, and its frames (estimated as 4:2:0 at the kept size) fit what is left."""
        if self.full or not 0 < info.num_frames <= self.max_frames:
            return False
        width, height = resized_dims(info.width, info.height, min(shrink_to, info.width, info.height))
        if self.used + info.num_frames * width * height * 3 // 2 > self.budget:
            self._stop_keeping()
        return not self.full

    def _keep(self, path: str, frames: list[av.VideoFrame]) -> None:
        size = sum(_frame_bytes(frame) for frame in {id(frame): frame for frame in frames}.values())
        if self.used + size > self.budget:
            self._stop_keeping()
            return
        self.videos[path] = frames
        self.used += size

    def _stop_keeping(self) -> None:
        """The budget is spent: keep what is kept, decode the rest per clip from now on."""
        self.full = True
        logger.info("%d training videos kept in memory (%d MB, the budget); the others are decoded every epoch",
                    len(self.videos), self.used >> 20)


class _ClipWriter:
    """Fills each clip's output from frames given with their rows of the clips' concatenated indices."""

    def __init__(self, clips: Sequence[tuple[Sequence[int], ClipWindow]]) -> None:
        lengths = [len(indices) for indices, _ in clips]
        self.starts = np.cumsum([0, *lengths])
        self.converters = [_WindowConverter(window) for _, window in clips]
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
def _reading(path: str | Path) -> Iterator[_Losses]:
    """The frames a read of ``path`` loses to bad packets, recorded for `damage_found` and named
    once in the log (training's log shows a damaged file when it is first read); FFmpeg's errors
    re-raised as `VideoReadError`."""
    losses = _Losses()
    try:
        yield losses
    except av.error.FFmpegError as error:
        raise VideoReadError(path, f"decoding failed ({_reason(error)})") from error
    if losses.cause and str(path) not in _FOUND_DAMAGE:
        _FOUND_DAMAGE[str(path)] = losses.damage()
        logger.warning("damaged %s: %s", path, losses.damage())


def _decoded(
    container: av.container.InputContainer, path: str | Path, indices: Sequence[int], batch: int, losses: _Losses
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
# about what decoding 6 frames does. Measured, CPU per clip: a 16-frame segment clip of a 256x192
# H.264 file (keyframe a second, ~100 frames) 31.6 ms at 2, 29.1 at 8, 28.3 never seeking;
# an 8-frame clip of a 175-frame MPEG-4 AVI (keyframe every 12) 3.3-3.8 ms at 2 or 8, 5.9 never.
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


def _keyframe_indices(stream, clock: _Clock) -> list[int] | None:
    """Sorted frame indices of the keyframes in the container's index, or None when it has none
    (the demuxer reads it with the header: AVI idx1, MP4 stss, MKV cues)."""
    keyframes = sorted({clock.index_at(entry.timestamp) for entry in stream.index_entries if entry.is_keyframe})
    return keyframes or None


class _Clock:
    """Frame index <-> timestamp of one stream, in integer-and-float arithmetic (Fraction is slow)."""

    def __init__(self, stream) -> None:
        self.fps = _stream_fps(stream)
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
    container, stream, wanted: list[int], path, losses: _Losses
) -> Iterator[tuple[av.VideoFrame, list[int]]]:
    """Yield (frame, the wanted indices it serves), in order, one seek per far-apart run of indices."""
    clock = _Clock(stream)
    keyframes = _keyframe_indices(stream, clock) if clock.num else None
    for segment in _segments(wanted, keyframes):
        yield from _decode_segment(container, stream, segment, clock, path, losses)


def _decode_segment(container, stream, wanted: list[int], clock: _Clock, path, losses: _Losses):
    if wanted[0] > 0 and clock.num:
        container.seek(clock.pts(wanted[0]), stream=stream, backward=True, any_frame=False)
        frames = _frames(container, stream, losses, clock)
        first = next(frames, None)
        # A seek landing after the first wanted frame (a bad index in the file), or on frames
        # without timestamps, cannot be trusted: decode from the start instead.
        if first is not None and first.pts is not None and clock.index(first, 0) <= wanted[0]:
            yield from _assign(_chain(first, frames), wanted, clock)
            return
    _rewind(container)
    found = False
    for item in _assign(_frames(container, stream, losses, clock), wanted, clock):
        found = True
        yield item
    if not found:
        raise VideoReadError(path, "no frame could be decoded (empty or corrupt file)")


def _chain(first: av.VideoFrame, rest: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    yield first
    yield from rest


def _assign(frames: Iterator[av.VideoFrame], wanted: list[int], clock: _Clock):
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


def _to_rgb(frame: av.VideoFrame, short_side: int | None, reformatter: VideoReformatter | None = None) -> np.ndarray:
    """RGB (H, W, 3) as displayed (rotation applied), resized so the short side is ``short_side``."""
    reformatter = reformatter or VideoReformatter()
    array = reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()
    rotation = _rotation(frame)
    if rotation:
        array = np.ascontiguousarray(np.rot90(array, k=rotation // 90))
    if short_side is not None:
        array = resize_short_side(array[None], short_side)[0]
    return array


def resize_short_side(frames: np.ndarray, short_side: int) -> np.ndarray:
    """Resize uint8 (N, H, W, 3) frames so their short side is ``short_side`` (see `resized_dims`).

    Antialiased bilinear on uint8 in torch: PIL's ``resize(BILINEAR)``, which transformers'
    VideoMAE processor uses, to within one level, in under half of swscale's time on a batch.
    """
    import torch  # here, not at the top: probing a dataset folder (`vidcls data`) needs no torch

    height, width = frames.shape[1:3]
    new_width, new_height = resized_dims(width, height, short_side)
    if (new_width, new_height) == (width, height):
        return frames
    channels_first = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(
        channels_first, size=(new_height, new_width), mode="bilinear", antialias=True, align_corners=False
    )
    return np.ascontiguousarray(resized.permute(0, 2, 3, 1).numpy())


# log2 of the chroma subsampling (x, y) of the planar YUV formats whose source pixels
# `read_clip` crops before scaling; other formats take the full-frame path.
_CHROMA_SHIFT = {
    "yuv420p": (1, 1), "yuvj420p": (1, 1), "yuv422p": (1, 0), "yuvj422p": (1, 0), "yuv444p": (0, 0), "yuvj444p": (0, 0),
}


class _WindowConverter:
    """Writes one frame's `ClipWindow` pixels, RGB (3, size, size), into an output array, for one clip's frames."""

    def __init__(self, window: ClipWindow) -> None:
        self.window = window
        self.reformatter = VideoReformatter()
        self.columns = slice(None, None, -1) if window.flip else slice(None)
        self.key = None  # the frame geometry the crop below was set up for
        self.crop = None  # (per plane: (top, left, height, width, target array), cropped frame), or None

    def __call__(self, frame: av.VideoFrame, out: np.ndarray) -> None:
        key = (frame.width, frame.height, frame.format.name, _rotation(frame))
        if key != self.key:
            self.key, self.crop = key, self._plan(frame)
        if self.crop is None:
            out[...] = self._full_frame(frame)
            return
        planes, cropped = self.crop
        for (top, left, height, width, target), source in zip(planes, frame.planes):
            target[:, :width] = _plane_array(source)[top : top + height, left : left + width]
        cropped.colorspace, cropped.color_range = frame.colorspace, frame.color_range
        size = self.window.size
        if (cropped.width, cropped.height) == (size, size):
            # No scaling: swscale's unscaled YUV -> planar RGB path garbles rows whose width is 2-8
            # past a multiple of 16 (FFmpeg 8), so convert to packed RGB, correct at any width.
            rgb = self.reformatter.reformat(cropped, format="rgb24", threads=1).to_ndarray()
            out[...] = rgb.transpose(2, 0, 1)[:, :, self.columns]
            return
        planar = self.reformatter.reformat(cropped, size, size, "gbrp", interpolation=_INTERPOLATION, threads=1)
        for channel, plane in zip((1, 2, 0), planar.planes):  # gbrp holds G, B, R
            out[channel] = _plane_array(plane)[:, :size][:, self.columns]

    def _plan(self, frame: av.VideoFrame):
        """Where each plane's window lies, and a frame to copy it into; None for the full-frame path."""
        shift = _CHROMA_SHIFT.get(frame.format.name)
        if shift is None or _rotation(frame) or min(frame.width, frame.height) < 4:
            return None
        if any(plane.line_size < 0 for plane in frame.planes):
            return None
        x, y, width, height = _source_box(frame.width, frame.height, self.window, 1 << shift[0], 1 << shift[1])
        cropped = av.VideoFrame(width, height, frame.format.name)
        planes = []
        for number, target in enumerate(cropped.planes):
            sx, sy = shift if number else (0, 0)
            planes.append((y >> sy, x >> sx, target.height, target.width, _plane_array(target)))
        return planes, cropped

    def _full_frame(self, frame: av.VideoFrame) -> np.ndarray:
        """Rotated or unusual frames: resize the whole frame, then crop (as `read_frames` + crop)."""
        window = self.window
        rgb = _to_rgb(frame, window.short_side, self.reformatter)
        top = min(window.top, rgb.shape[0] - window.size)
        left = min(window.left, rgb.shape[1] - window.size)
        crop = rgb[top : top + window.size, left : left + window.size]
        if window.flip:
            crop = crop[:, ::-1]
        return crop.transpose(2, 0, 1)


def _plane_array(plane) -> np.ndarray:
    """A writable (height, line_size) view of a frame plane's bytes."""
    return np.frombuffer(plane, np.uint8, count=plane.height * plane.line_size).reshape(plane.height, plane.line_size)


def _source_box(width: int, height: int, window: ClipWindow, align_x: int, align_y: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the stored frame that ``window`` shows, on the chroma grid."""
    out_w, out_h = resized_dims(width, height, window.short_side)
    if window.size > min(out_w, out_h):
        raise ValueError(f"a {window.size}-pixel crop does not fit a frame resized to {out_w}x{out_h}")
    top, left = min(window.top, out_h - window.size), min(window.left, out_w - window.size)
    x, w = _span(left * width / out_w, window.size * width / out_w, width, align_x)
    y, h = _span(top * height / out_h, window.size * height / out_h, height, align_y)
    return x, y, w, h


def _span(start: float, length: float, limit: int, align: int) -> tuple[int, int]:
    """Start and length rounded to multiples of ``align``, inside [0, limit)."""
    length = min(max(align, int(round(length / align)) * align), limit // align * align)
    start = min(int(round(start / align)) * align, limit - length)
    return start // align * align, length
