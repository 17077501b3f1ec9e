"""Crops, flips, windows drawn before decoding, and normalisation on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidcls.data.clip_spec import IMAGENET_MEAN, IMAGENET_STD, ClipSpec
from vidcls.data.transforms import (
    EvalTransform,
    TrainTransform,
    denormalize_to_uint8,
    normalize_batch,
    random_crop,
    spatial_crops,
    to_clip_tensor,
)
from vidcls.data.crop import ClipWindow, resized_dims


def position_frames(num_frames: int = 4, height: int = 60, width: int = 80) -> np.ndarray:
    """(T, H, W, 3) frames where channel 0 is the column, channel 1 the row and channel 2 the frame number."""
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    frames[..., 0] = np.arange(width)[None, None, :]
    frames[..., 1] = np.arange(height)[None, :, None]
    frames[..., 2] = np.arange(num_frames)[:, None, None]
    return frames


def test_random_crop_takes_the_same_window_from_every_frame():
    frames = position_frames()
    rng = np.random.default_rng(0)
    for _ in range(50):
        crop = random_crop(frames, 32, rng)
        assert crop.shape == (4, 32, 32, 3)
        assert np.all(crop[..., :2] == crop[:1, ..., :2])  # same window in every frame
        left, top = int(crop[0, 0, 0, 0]), int(crop[0, 0, 0, 1])
        assert 0 <= left <= 80 - 32 and 0 <= top <= 60 - 32


def test_random_crop_of_the_full_frame():
    frames = position_frames(height=32, width=32)
    np.testing.assert_array_equal(random_crop(frames, 32, np.random.default_rng(0)), frames)


def test_one_spatial_crop_is_the_centre():
    (crop,) = spatial_crops(position_frames(), 40, 1)
    assert crop.shape == (4, 40, 40, 3)
    assert (crop[0, 0, 0, 0], crop[0, 0, 0, 1]) == (20, 10)  # ((80 - 40) // 2, (60 - 40) // 2)


def test_three_crops_run_along_the_long_side():
    landscape = spatial_crops(position_frames(height=60, width=80), 60, 3)
    assert [int(c[0, 0, 0, 0]) for c in landscape] == [0, 10, 20]  # left, centre, right
    assert all(int(c[0, 0, 0, 1]) == 0 for c in landscape)
    portrait = spatial_crops(position_frames(height=80, width=60), 60, 3)
    assert [int(c[0, 0, 0, 1]) for c in portrait] == [0, 10, 20]  # top, centre, bottom
    assert all(int(c[0, 0, 0, 0]) == 0 for c in portrait)
    with pytest.raises(ValueError):
        spatial_crops(position_frames(), 40, 2)


def test_to_clip_tensor_is_channels_first_uint8():
    frames = position_frames()
    clip = to_clip_tensor(frames[:, ::-1])  # a non-contiguous view is fine
    assert clip.dtype == torch.uint8 and clip.shape == (4, 3, 60, 80) and clip.is_contiguous()
    np.testing.assert_array_equal(clip.numpy(), frames[:, ::-1].transpose(0, 3, 1, 2))


def test_train_transform_crop_size_and_flip():
    spec = ClipSpec(num_frames=4, crop_size=32)
    frames = position_frames()
    never = TrainTransform(spec, flip=False)
    rng = np.random.default_rng(0)
    for _ in range(30):
        clip = never(frames, rng)
        assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.uint8
        assert np.all(np.diff(clip[0, 0, 0].numpy().astype(int)) == 1)  # columns increase: not flipped
    sometimes = TrainTransform(spec, flip=True)
    flipped = [bool(np.all(np.diff(sometimes(frames, rng)[0, 0, 0].numpy().astype(int)) == -1)) for _ in range(200)]
    assert 60 < sum(flipped) < 140  # about half


def test_train_transform_short_side_range():
    transform = TrainTransform(ClipSpec(crop_size=224))
    assert transform.short_side_range == (224, 280)  # the crop keeps 80-100% of the short side
    rng = np.random.default_rng(0)
    sides = {transform.decode_short_side(rng) for _ in range(3000)}
    assert min(sides) == 224 and max(sides) == 280


def test_sample_window_fits_the_resized_frame():
    transform = TrainTransform(ClipSpec(crop_size=224))
    rng = np.random.default_rng(0)
    flips = 0
    for _ in range(300):
        window = transform.sample_window(320, 240, rng)
        assert isinstance(window, ClipWindow) and window.size == 224
        width, height = resized_dims(320, 240, window.short_side)
        assert 224 <= window.short_side <= 280
        assert 0 <= window.top <= height - 224 and 0 <= window.left <= width - 224
        flips += window.flip
    assert 100 < flips < 200
    assert not any(TrainTransform(ClipSpec(crop_size=224), flip=False).sample_window(320, 240, rng).flip for _ in range(50))


def test_sample_window_draws_what_decode_then_crop_draws():
    """The same seed picks the same scale, crop and flip whether the window is drawn before decoding or after."""
    spec = ClipSpec(num_frames=2, crop_size=48)
    transform = TrainTransform(spec, flip=True)
    for seed in range(20):
        window = transform.sample_window(80, 60, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        short_side = transform.decode_short_side(rng)
        width, height = resized_dims(80, 60, short_side)
        frames = position_frames(num_frames=2, height=height, width=width)
        clip = transform(frames, rng)
        columns = clip[0, 0, 0].numpy().astype(int)
        assert window.short_side == short_side
        assert window.top == int(clip[0, 1, 0, 0])
        assert window.left == int(columns.min())
        assert window.flip == bool(columns[0] > columns[-1])


def test_eval_transform_views():
    spec = ClipSpec(num_frames=4, crop_size=40, resize_short_side=48)
    assert EvalTransform(spec).decode_resize() == 48
    assert EvalTransform(ClipSpec(crop_size=224, resize_short_side=128)).decode_resize() == 224
    frames = position_frames(height=48, width=64)
    assert EvalTransform(spec)(frames).shape == (1, 4, 3, 40, 40)
    views = EvalTransform(spec, num_crops=3)(frames)
    assert views.shape == (3, 4, 3, 40, 40) and views.dtype == torch.uint8
    assert [int(v[0, 0, 0, 0]) for v in views] == [0, 12, 24]


def test_normalize_batch_is_x_over_255_minus_mean_over_std():
    spec = ClipSpec()
    batch = torch.randint(0, 256, (2, 3, 3, 5, 5), dtype=torch.uint8)
    normalised = normalize_batch(batch, spec)
    assert normalised.dtype == torch.float32 and normalised.shape == batch.shape
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(normalised, (batch.float() / 255 - mean) / std, atol=1e-5, rtol=1e-5)
    assert normalize_batch(batch, spec, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_normalize_then_denormalize_round_trips():
    spec = ClipSpec(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    batch = torch.arange(256, dtype=torch.uint8).repeat(3, 1).view(1, 3, 16, 16)
    torch.testing.assert_close(denormalize_to_uint8(normalize_batch(batch, spec), spec), batch, atol=0, rtol=0)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_normalisation_matches_the_processors_saved_with_the_model(kind):
    """What the model sees from vidcls equals what the VideoMAE processors vidcls saves give the same frames."""
    from vidcls.models.loading import clip_spec_from, create_model
    from vidcls.models.saving import image_processor_for, video_processor_for

    loaded = create_model("tiny", ["a", "b"])
    processor = (image_processor_for if kind == "image" else video_processor_for)(loaded.spec)
    spec = clip_spec_from(loaded.model, processor)
    assert spec == loaded.spec
    frames = np.random.default_rng(0).integers(0, 256, (spec.num_frames, spec.crop_size, spec.crop_size, 3), dtype=np.uint8)
    inputs = list(frames) if kind == "image" else [torch.from_numpy(frames)]
    extra = {} if kind == "image" else {"do_sample_frames": False}
    expected = processor(inputs, do_resize=False, do_center_crop=False, return_tensors="pt", **extra)["pixel_values"]
    ours = normalize_batch(to_clip_tensor(frames).unsqueeze(0), spec)
    assert ours.shape == expected.shape == (1, spec.num_frames, 3, spec.crop_size, spec.crop_size)
    torch.testing.assert_close(ours, expected.float(), atol=1e-5, rtol=1e-5)
