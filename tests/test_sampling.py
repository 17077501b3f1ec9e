"""Frame-index arithmetic: which frames each sampler takes, including videos shorter than a clip."""

from __future__ import annotations

import numpy as np
import pytest

from vidcls.sampling import (
    clip_span,
    pipeline_clip_indices,
    random_clip_indices,
    uniform_clip_indices,
    window_clip_indices,
)


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


def test_pipeline_indices_are_the_first_frames():
    np.testing.assert_array_equal(pipeline_clip_indices(8), np.arange(8))
    np.testing.assert_array_equal(pipeline_clip_indices(16), np.arange(16))
    # transformers: np.linspace(0, num_frames * rate - 1, num=num_frames, dtype=np.int64)
    np.testing.assert_array_equal(pipeline_clip_indices(4, 4), np.linspace(0, 15, num=4, dtype=np.int64))
    assert pipeline_clip_indices(16, 4).dtype == np.int64


def test_windows_tile_the_video():
    windows = window_clip_indices(video_frames=250, fps=25.0, window_seconds=2.0, num_frames=8, sample_rate=4)
    assert [(start, end) for start, end, _ in windows] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0), (8.0, 10.0)]
    for number, (_, _, indices) in enumerate(windows):
        low, high = number * 50, min(number * 50 + 50, 250)
        assert_clip(indices, 250, 8)
        assert indices.min() >= low and indices.max() < high
        np.testing.assert_array_equal(np.diff(indices), 4)


def test_last_window_may_be_shorter_and_still_gives_a_full_clip():
    windows = window_clip_indices(video_frames=110, fps=25.0, window_seconds=2.0, num_frames=8, sample_rate=4)
    start, end, indices = windows[-1]
    assert (start, end) == (4.0, 4.4)  # frames 100-109
    assert indices.shape == (8,) and indices.min() == 100 and indices.max() == 109


def test_window_shorter_than_a_clip_and_video_shorter_than_a_window():
    windows = window_clip_indices(video_frames=30, fps=25.0, window_seconds=10.0, num_frames=16, sample_rate=4)
    assert len(windows) == 1
    start, end, indices = windows[0]
    assert (start, end) == (0.0, 1.2)
    assert_clip(indices, 30, 16)
    assert indices[0] == 0 and indices[-1] == 29
