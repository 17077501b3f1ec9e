"""The pixels of a decoded frame: rotation, display width, the resize (short side, or a fixed
height x width), and the training crop scaled straight from the source pixels under it.

Two paths, one per use:

- `to_rgb` + `resize_frames` (evaluation, prediction): swscale's unscaled YUV -> RGB path,
  then the same antialiased bilinear resize as transformers' VideoMAE processor (PIL) and
  torchvision, done by torch on uint8, so vidcls scores a video on the pixels the pipeline gives
  its model.
- `WindowConverter` (training): only the source pixels under the random crop (`ClipWindow`) are
  scaled, straight to the crop size, in the same swscale call that converts to planar RGB, which
  is the (T, C, H, W) layout the model takes: no full-size frame and no transposing copy.
"""


from __future__ import annotations


from dataclasses import dataclass
from typing import Union

import av
import numpy as np
from av.video.reformatter import VideoReformatter

# Training crops are scaled by swscale: its default (bicubic) costs about three times bilinear
# when upscaling, for no gain here.
INTERPOLATION = "BILINEAR"

# How decoded frames are resized: an int is the short side (aspect kept), (height, width) an exact
# size (the whole frame kept, its aspect fitted), as a video processor's "shortest_edge" or
# "height" and "width".
Resize = Union[int, tuple[int, int]]


def frame_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation in multiples of 90 degrees (0 when absent)."""
    angle = getattr(frame, "rotation", 0) or 0
    return int(round(angle / 90.0)) % 4 * 90


def display_width(width: int, sample_aspect: float, pixel_format: str = "rgb24") -> int:
    """The width a player shows ``width`` stored pixels at (ffmpeg's ``scale=iw*sar:ih``), even
    for chroma-subsampled formats."""
    shown = max(1, int(round(width * sample_aspect)))
    return shown + shown % 2 if CHROMA_SHIFT.get(pixel_format, (0, 0))[0] else shown


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


def shrink_frame(frame: av.VideoFrame, short_side: int | None) -> av.VideoFrame:
    """The frame scaled down (swscale, same YUV format and colours) so its short side is at most
    ``short_side``; itself when already that small, when rotated, or in a format `read_clip`
    does not crop directly."""
    if short_side is None or min(frame.width, frame.height) <= short_side:
        return frame
    if frame.format.name not in CHROMA_SHIFT or frame_rotation(frame):
        return frame
    width, height = resized_dims(frame.width, frame.height, short_side)
    small = VideoReformatter().reformat(
        frame, width, height, interpolation=INTERPOLATION, src_color_range=frame.color_range,
        dst_color_range=frame.color_range, threads=1,
    )
    small.colorspace, small.color_range = frame.colorspace, frame.color_range
    return small


def compact_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """A copy of a decoder's frame in buffers of its own size, for a frame kept for long: decoders
    pad their frames (a 320 x 240 4:2:0 MPEG-4 frame takes 138 KB for 115 KB of pixels; a kept frame
    holds that buffer for good). Pixels, colours and conversions are the same; a rotated frame, or
    one in a format `read_clip` does not crop directly, is returned as it is (its side data stays)."""
    if frame.format.name not in CHROMA_SHIFT or frame_rotation(frame):
        return frame
    copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for source, target in zip(frame.planes, copy.planes):
        _plane_array(target)[:, : target.width] = _plane_array(source)[: target.height, : target.width]
    copy.colorspace, copy.color_range = frame.colorspace, frame.color_range
    return copy


def frame_bytes(frame: av.VideoFrame) -> int:
    """Memory a decoded frame's pixels take."""
    return sum(plane.buffer_size for plane in frame.planes)


def to_rgb(frame: av.VideoFrame, resize: Resize | None, reformatter: VideoReformatter | None = None) -> np.ndarray:
    """RGB (H, W, 3) as displayed (rotation applied), resized as ``resize`` says (`resize_frames`)."""
    reformatter = reformatter or VideoReformatter()
    array = reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()
    rotation = frame_rotation(frame)
    if rotation:
        array = np.ascontiguousarray(np.rot90(array, k=rotation // 90))
    if resize is not None:
        array = resize_frames(array[None], resize)[0]
    return array


def resize_frames(frames: np.ndarray, resize: Resize) -> np.ndarray:
    """Resize uint8 (N, H, W, 3) frames: to a short side of ``resize`` (see `resized_dims`), or to
    exactly ``resize`` = (height, width).

    Antialiased bilinear on uint8 in torch: PIL's ``resize(BILINEAR)``, which transformers'
    VideoMAE processor uses, to within one level, in under half of swscale's time on a batch.
    """
    import torch  # here, not at the top: probing a dataset folder (`vidcls data`) needs no torch

    height, width = frames.shape[1:3]
    if isinstance(resize, int):
        new_width, new_height = resized_dims(width, height, resize)
    else:
        new_height, new_width = resize
    if (new_width, new_height) == (width, height):
        return frames
    channels_first = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(
        channels_first, size=(new_height, new_width), mode="bilinear", antialias=True, align_corners=False
    )
    return np.ascontiguousarray(resized.permute(0, 2, 3, 1).numpy())


# log2 of the chroma subsampling (x, y) of the planar YUV formats whose source pixels
# `read_clip` crops before scaling; other formats take the full-frame path.
CHROMA_SHIFT = {
    "yuv420p": (1, 1), "yuvj420p": (1, 1), "yuv422p": (1, 0), "yuvj422p": (1, 0), "yuv444p": (0, 0), "yuvj444p": (0, 0),
}


class WindowConverter:
    """Writes one frame's `ClipWindow` pixels, RGB (3, size, size), into an output array, for one clip's frames."""

    def __init__(self, window: ClipWindow) -> None:
        self.window = window
        self.reformatter = VideoReformatter()
        self.columns = slice(None, None, -1) if window.flip else slice(None)
        self.key = None  # the frame geometry the crop below was set up for
        self.crop = None  # (per plane: (top, left, height, width, target array), cropped frame), or None

    def __call__(self, frame: av.VideoFrame, out: np.ndarray) -> None:
        key = (frame.width, frame.height, frame.format.name, frame_rotation(frame))
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
        planar = self.reformatter.reformat(cropped, size, size, "gbrp", interpolation=INTERPOLATION, threads=1)
        for channel, plane in zip((1, 2, 0), planar.planes):  # gbrp holds G, B, R
            out[channel] = _plane_array(plane)[:, :size][:, self.columns]

    def _plan(self, frame: av.VideoFrame):
        """Where each plane's window lies, and a frame to copy it into; None for the full-frame path."""
        shift = CHROMA_SHIFT.get(frame.format.name)
        if shift is None or frame_rotation(frame) or min(frame.width, frame.height) < 4:
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
        rgb = to_rgb(frame, window.short_side, self.reformatter)
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
