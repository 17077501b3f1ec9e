"""Frame-index arithmetic: which frames each sampler takes, including videos shorter than a clip."""

from __future__ import annotations

import numpy as np
import pytest

from vidcls.data.sampling import (
    clip_span,
    segment_indices,
    eval_clip_indices,
    train_clip_indices,
    window_clip_indices,
)
from vidcls.data.clip_spec import ClipSpec

DENSE = ClipSpec(num_frames=16, sample_rate=4, sampling="dense")
SEGMENT = ClipSpec(num_frames=16, sampling="segment")


def dense(num_frames: int, sample_rate: int = 4) -> ClipSpec:
    return ClipSpec(num_frames=num_frames, sample_rate=sample_rate, sampling="dense")


def random_clip_indices(video_frames, num_frames, sample_rate, rng):
    return train_clip_indices(video_frames, dense(num_frames, sample_rate), rng)


def uniform_clip_indices(video_frames, num_frames, sample_rate, clips):
    return eval_clip_indices(video_frames, dense(num_frames, sample_rate), clips)


def assert_clip(indices: np.ndarray, video_frames: int, num_frames: int) -> None:
    assert indices.dtype == np.int64 and indices.shape == (num_frames,)
    assert indices.min() >= 0 and indices.max() <= max(video_frames - 1, 0)
    assert np.all(np.diff(indices) >= 0)


def test_clip_span():
    assert clip_span(16, 4) == 64 and clip_span(8, 1) == 8


def test_random_clip_is_evenly_spaced_and_covers_every_start():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(2000):
        indices = random_clip_indices(100, 16, 4, rng)
        assert_clip(indices, 100, 16)
        np.testing.assert_array_equal(np.diff(indices), 4)
        starts.add(int(indices[0]))
    assert starts == set(range(100 - 64 + 1))  # every start from 0 to the last that fits


def test_random_clip_exactly_as_long_as_the_video():
    indices = random_clip_indices(64, 16, 4, np.random.default_rng(1))
    np.testing.assert_array_equal(indices, np.arange(0, 64, 4))


@pytest.mark.parametrize("video_frames", [1, 5, 16, 40, 63])
def test_random_clip_of_a_short_video_spreads_over_the_whole_video(video_frames):
    indices = random_clip_indices(video_frames, 16, 4, np.random.default_rng(0))
    assert_clip(indices, video_frames, 16)
    assert indices[0] == 0 and indices[-1] == video_frames - 1
    # As many distinct frames as the video has, up to the clip length.
    assert len(set(indices.tolist())) == min(video_frames, 16)


def test_random_clip_is_reproducible_from_the_generator():
    first = random_clip_indices(500, 16, 4, np.random.default_rng(7))
    again = random_clip_indices(500, 16, 4, np.random.default_rng(7))
    np.testing.assert_array_equal(first, again)


def test_one_uniform_clip_is_the_centre_clip():
    (clip,) = uniform_clip_indices(100, 16, 4, 1)
    np.testing.assert_array_equal(clip, 18 + np.arange(16) * 4)  # (100 - 64) // 2 = 18


def test_uniform_clips_spread_from_start_to_end():
    clips = uniform_clip_indices(300, 16, 4, 5)
    assert len(clips) == 5
    for clip in clips:
        assert_clip(clip, 300, 16)
        np.testing.assert_array_equal(np.diff(clip), 4)
    assert clips[0][0] == 0 and clips[-1][-1] == 300 - 4  # last clip ends at the last start that fits
    starts = [int(clip[0]) for clip in clips]
    assert starts == sorted(starts) and len(set(starts)) == 5


@pytest.mark.parametrize("video_frames", [1, 10, 63])
def test_uniform_clips_of_a_short_video_are_the_whole_video(video_frames):
    clips = uniform_clip_indices(video_frames, 16, 4, 3)
    assert len(clips) == 3
    for clip in clips:
        assert_clip(clip, video_frames, 16)
        assert clip[0] == 0 and clip[-1] == video_frames - 1


def test_first_segment_clip_is_exactly_the_transformers_pipeline_frames():
    from transformers.video_utils import VideoMetadata, default_sample_indices_fn

    for total in (16, 17, 50, 75, 101, 1000):
        for frames in (8, 16):
            expected = default_sample_indices_fn(VideoMetadata(total_num_frames=total, fps=25.0), num_frames=frames)
            (ours,) = eval_clip_indices(total, ClipSpec(num_frames=frames), 1)
            np.testing.assert_array_equal(ours, expected)


def test_segment_test_clips_take_the_same_place_in_every_segment():
    clips = eval_clip_indices(160, SEGMENT, 4)  # segments of 10 frames
    np.testing.assert_array_equal(clips[0], np.arange(16) * 10)
    np.testing.assert_array_equal(clips[1], np.arange(16) * 10 + 2)  # floor(2.5)
    np.testing.assert_array_equal(clips[2], np.arange(16) * 10 + 5)
    np.testing.assert_array_equal(clips[3], np.arange(16) * 10 + 7)


def test_segment_training_clip_takes_one_random_frame_of_each_segment():
    rng = np.random.default_rng(0)
    seen = np.zeros((16, 10), bool)
    for _ in range(300):
        indices = train_clip_indices(160, SEGMENT, rng)
        assert_clip(indices, 160, 16)
        segment, offset = np.divmod(indices, 10)
        np.testing.assert_array_equal(segment, np.arange(16))  # never two frames of one segment
        seen[np.arange(16), offset] = True
    assert seen.all()  # every frame of every segment is drawn


@pytest.mark.parametrize("video_frames", [1, 5, 15])
def test_segment_clips_of_a_video_shorter_than_a_clip_repeat_frames_in_order(video_frames):
    for indices in eval_clip_indices(video_frames, SEGMENT, 2):
        assert_clip(indices, video_frames, 16)
        assert set(indices.tolist()) == set(range(video_frames))
    assert_clip(train_clip_indices(video_frames, SEGMENT, np.random.default_rng(0)), video_frames, 16)


def test_segment_indices_never_pass_the_last_frame():
    assert segment_indices(10, 4, np.full(4, 0.999)).max() == 9


def test_unknown_sampling_is_refused():
    with pytest.raises(ValueError, match="segment, dense"):
        eval_clip_indices(100, ClipSpec(sampling="uniform"), 1)


def test_segment_window_spreads_its_clip_over_the_window():
    windows = window_clip_indices(video_frames=250, fps=25.0, window_seconds=2.0, spec=ClipSpec(num_frames=10))
    for number, (_, _, indices) in enumerate(windows):
        np.testing.assert_array_equal(indices, number * 50 + np.arange(10) * 5)


def test_windows_tile_the_video():
    windows = window_clip_indices(video_frames=250, fps=25.0, window_seconds=2.0, spec=dense(8))
    assert [(start, end) for start, end, _ in windows] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0), (8.0, 10.0)]
    for number, (_, _, indices) in enumerate(windows):
        low, high = number * 50, min(number * 50 + 50, 250)
        assert_clip(indices, 250, 8)
        assert indices.min() >= low and indices.max() < high
        np.testing.assert_array_equal(np.diff(indices), 4)


def test_last_window_may_be_shorter_and_still_gives_a_full_clip():
    windows = window_clip_indices(video_frames=110, fps=25.0, window_seconds=2.0, spec=dense(8))
    start, end, indices = windows[-1]
    assert (start, end) == (4.0, 4.4)  # frames 100-109
    assert indices.shape == (8,) and indices.min() == 100 and indices.max() == 109


def test_window_shorter_than_a_clip_and_video_shorter_than_a_window():
    windows = window_clip_indices(video_frames=30, fps=25.0, window_seconds=10.0, spec=dense(16))
    assert len(windows) == 1
    start, end, indices = windows[0]
    assert (start, end) == (0.0, 1.2)
    assert_clip(indices, 30, 16)
    assert indices[0] == 0 and indices[-1] == 29
