"""Frame operations between decoding and the model, kept in uint8 until the batch is on the device.

The guide normalises full-size float frames in the data workers; here workers only crop and
flip uint8 arrays (resizing already happened in swscale while decoding) and
`normalize_batch` turns a whole uint8 batch into floats on the device, where it is cheap.
Training goes one step further: `TrainTransform.sample_window` draws the scale, crop and flip
before decoding, and the decoder (`decode.read_clip`) produces just those pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from vidcls.data.clip_spec import ClipSpec
from vidcls.errors import VidclsError
from vidcls.data.crop import ClipWindow, Resize, resized_dims

# Random short side of a training clip, relative to the crop: the crop keeps 80-100% of the
# frame's short side. Milder than the guide's 256-320 for a 224 crop (70-88%), which cuts away
# much of a motion that crosses the frame.
TRAIN_SCALE_RANGE = (1.0, 1.25)


def _crop(frames: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    return frames[:, top : top + size, left : left + size]


def random_crop(frames: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` x ``size`` window of (T, H, W, C) frames, the same for every frame."""
    height, width = frames.shape[1:3]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return _crop(frames, top, left, size)


def spatial_crops(frames: np.ndarray, size: int, num_crops: int) -> list[np.ndarray]:
    """Centre crop, or three crops along the long side (start, centre, end) as mmaction2 tests."""
    height, width = frames.shape[1:3]
    centre_top, centre_left = (height - size) // 2, (width - size) // 2
    if num_crops == 1:
        return [_crop(frames, centre_top, centre_left, size)]
    if num_crops != 3:
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    if width >= height:
        return [_crop(frames, centre_top, left, size) for left in (0, centre_left, width - size)]
    return [_crop(frames, top, centre_left, size) for top in (0, centre_top, height - size)]


def to_clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, C) uint8 array -> (T, C, H, W) uint8 tensor, the layout VideoMAE takes."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


class TrainTransform:
    """Random short-side scale (done by the decoder), random crop, optional horizontal flip."""

    def __init__(self, spec: ClipSpec, flip: bool = True) -> None:
        if spec.frame_size:
            raise VidclsError(
                "this model reads whole frames (no crop), which training clips do not draw yet; train its head "
                "with --freeze-backbone, or train from the pretrained model it came from"
            )
        self.spec = spec
        self.flip = flip
        low, high = TRAIN_SCALE_RANGE
        self.short_side_range = (round(spec.crop_size * low), round(spec.crop_size * high))

    def decode_short_side(self, rng: np.random.Generator) -> int:
        """The short side the decoder should resize to for this clip."""
        return int(rng.integers(self.short_side_range[0], self.short_side_range[1] + 1))

    def sample_window(self, width: int, height: int, rng: np.random.Generator) -> ClipWindow:
        """Scale, crop and flip for one clip of a ``width`` x ``height`` video, drawn before decoding.

        The same draws, in the same order, as `decode_short_side` followed by `__call__`, so a
        seed picks the same window either way.
        """
        short_side = self.decode_short_side(rng)
        resized_w, resized_h = resized_dims(width, height, short_side)
        size = self.spec.crop_size
        top = int(rng.integers(0, resized_h - size + 1))
        left = int(rng.integers(0, resized_w - size + 1))
        flip = bool(self.flip and rng.random() < 0.5)
        return ClipWindow(short_side, top, left, size, flip)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        clip = random_crop(frames, self.spec.crop_size, rng)
        if self.flip and rng.random() < 0.5:
            clip = clip[:, :, ::-1]
        return to_clip_tensor(clip)


class EvalTransform:
    """Resize (done by the decoder), then 1 or 3 deterministic crops, or the whole frame."""

    def __init__(self, spec: ClipSpec, num_crops: int = 1) -> None:
        if num_crops not in (1, 3):
            raise VidclsError(f"crops must be 1 (centre) or 3 (along the long side), got {num_crops}")
        if spec.frame_size and num_crops != 1:
            raise VidclsError(f"this model reads the whole frame, uncropped: crops must be 1, got {num_crops}")
        self.spec = spec
        self.num_crops = num_crops

    def decode_resize(self) -> Resize:
        """The model's frame size when it reads whole frames, else a short side at least the crop."""
        return self.spec.frame_size or max(self.spec.resize_short_side, self.spec.crop_size)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """(num_crops, T, C, H, W) uint8."""
        if self.spec.frame_size:
            return to_clip_tensor(frames)[None]
        crops = spatial_crops(frames, self.spec.crop_size, self.num_crops)
        return torch.stack([to_clip_tensor(crop) for crop in crops])


def normalize_batch(
    batch: torch.Tensor, spec: ClipSpec, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 (..., C, H, W) on any device -> normalised floats: (x / 255 - mean) / std."""
    shape = (3, 1, 1)
    mean = torch.tensor(spec.mean, device=batch.device, dtype=torch.float32).view(shape) * 255
    std = torch.tensor(spec.std, device=batch.device, dtype=torch.float32).view(shape) * 255
    return ((batch.float() - mean) / std).to(dtype)


def denormalize_to_uint8(pixels: torch.Tensor, spec: ClipSpec) -> torch.Tensor:
    """Inverse of `normalize_batch`, for showing what the model sees."""
    shape = (3, 1, 1)
    mean = torch.tensor(spec.mean, device=pixels.device).view(shape)
    std = torch.tensor(spec.std, device=pixels.device).view(shape)
    return ((pixels.float() * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
