"""Decoding: the fast paths return what a plain decode of every frame returns, on real files."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest

from videos import label_of, labelled_frames, write_vfr_video, write_video
from vidcls.errors import VideoReadError
from vidcls.data.files import is_video_file
from vidcls.data.crop import ClipWindow, frame_bytes, resized_dims, to_rgb as _to_rgb
from vidcls.data.decode import (
    FrameClock, Losses, cut_clips, damage_found, open_video, read_all_frames, read_clip, read_clips, read_frames, rewind,
    shown_frames,
)
from vidcls.data.kept_frames import KeptVideos
from vidcls.data.probe import probe_video

NUM_FRAMES = 200  # > 150, so reads seek (keyframes every 12 frames) instead of decoding from the start


def reference_decode(path: Path) -> np.ndarray:
    """Every frame from the start, plain PyAV RGB conversion: what the fast path must match."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def pick(reference: np.ndarray, indices) -> np.ndarray:
    return reference[np.minimum(np.asarray(indices), len(reference) - 1)]


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "long.avi", labelled_frames(NUM_FRAMES))


@pytest.fixture(scope="module")
def long_reference(long_video) -> np.ndarray:
    return reference_decode(long_video)


def test_reference_frames_are_what_was_written(long_reference):
    assert len(long_reference) == NUM_FRAMES
    assert [label_of(frame) for frame in long_reference] == list(range(NUM_FRAMES))


@pytest.mark.parametrize(
    "indices",
    [
        [0, 1, 2, 3],
        list(range(100, 164, 4)),  # a 16x4 clip from the middle: a seek to the keyframe before 100
        [150, 3, 150, 77, 3, 199],  # unsorted and repeated
        [37],
        [13, 170],  # far apart: two seeks
    ],
)
def test_read_frames_matches_a_full_decode(long_video, long_reference, indices):
    frames = read_frames(long_video, indices)
    assert frames.dtype == np.uint8 and frames.shape == (len(indices), 48, 64, 3)
    np.testing.assert_array_equal(frames, pick(long_reference, indices))


def test_indices_past_the_end_repeat_the_last_frame(long_video, long_reference):
    indices = [190, 199, 200, 205, 300]
    frames = read_frames(long_video, indices)
    np.testing.assert_array_equal(frames, pick(long_reference, indices))
    assert [label_of(frame) for frame in frames] == [190, 199, 199, 199, 199]


def test_read_frames_resizes_in_swscale(long_video, long_reference):
    frames = read_frames(long_video, [5, 120], resize=96)
    assert frames.shape == (2, 96, 128, 3)
    assert [label_of(frame) for frame in frames] == [5, 120]


def test_resize_is_the_pipelines_pil_resize(long_video, long_reference):
    """Evaluation frames are resized as transformers' VideoMAE processor resizes them (PIL bilinear)."""
    from PIL import Image

    frames = read_frames(long_video, [5, 120], resize=30)
    expected = np.stack([np.asarray(Image.fromarray(f).resize((40, 30), Image.BILINEAR)) for f in long_reference[[5, 120]]])
    assert frames.shape == expected.shape == (2, 30, 40, 3)
    assert np.abs(frames.astype(int) - expected).max() <= 1


def test_empty_index_list_is_refused(long_video):
    with pytest.raises(ValueError):
        read_frames(long_video, [])


def test_odd_frame_size(tmp_path):
    path = write_video(tmp_path / "odd.avi", labelled_frames(30, width=97, height=71))
    reference = reference_decode(path)
    np.testing.assert_array_equal(read_frames(path, [4, 20]), reference[[4, 20]])
    for short_side in (50, 71, 128):
        width, height = resized_dims(97, 71, short_side)
        assert read_frames(path, [4, 20], resize=short_side).shape == (2, height, width, 3)
    assert resized_dims(97, 71, 50) == (68, 50)
    assert resized_dims(71, 97, 50) == (50, 68)
    clip = read_clip(path, [4, 20, 29], ClipWindow(short_side=60, top=0, left=11, size=60))  # centred: 82x60
    assert clip.shape == (3, 3, 60, 60)
    assert [label_of(frame, channels_first=True) for frame in clip] == [4, 20, 29]


def test_variable_frame_rate_maps_time_to_index(tmp_path):
    # At 25 fps, index = round(t / 40 ms); gaps where frames are missing.
    stamps = [0, 40, 80, 200, 240, 280, 400, 440, 480, 600, 640, 680, 800, 840, 880, 1000]
    path = write_vfr_video(tmp_path / "vfr.mkv", stamps)
    time_index = [round(s / 40) for s in stamps]  # 0 1 2 5 6 7 10 11 12 15 16 17 20 21 22 25
    with av.open(str(path)) as container:
        assert [f.pts for f in container.decode(video=0)] == stamps  # the file really is VFR
    wanted = [0, 3, 5, 11, 13, 21, 24, 25, 40]
    # Each index gets the first frame shown at or after it; past the end, the last frame.
    expected = [next((i for i, t in enumerate(time_index) if t >= w), len(stamps) - 1) for w in wanted]
    frames = read_frames(path, wanted)
    assert [label_of(frame) for frame in frames] == expected
    reference = reference_decode(path)
    np.testing.assert_array_equal(frames, reference[expected])
    # Reading one index at a time (a fresh seek each) agrees with reading them together.
    assert [label_of(read_frames(path, [w])[0]) for w in wanted] == expected
    info = probe_video(path)
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(1.0, abs=0.1)


def test_rotated_video_is_returned_as_displayed(tmp_path):
    frames = labelled_frames(6)
    frames[:, :4] = 255  # a white band along the top edge, to tell the rotation
    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # counter-clockwise, as a phone filming in portrait records it
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (48, 64, 90)
    reference = reference_decode(path)  # stored orientation
    decoded = read_frames(path, [1, 4])
    assert decoded.shape == (2, 64, 48, 3)
    np.testing.assert_array_equal(decoded, np.rot90(reference[[1, 4]], k=1, axes=(1, 2)))
    assert decoded[0, :, :3].mean() > 240  # the top band is now the left edge
    resized = read_frames(path, [1], resize=24)
    assert resized.shape == (1, 32, 24, 3)
    clip = read_clip(path, [1, 4], ClipWindow(short_side=24, top=8, left=0, size=24))
    assert clip.shape == (2, 3, 24, 24)
    np.testing.assert_array_equal(clip[0], resized[0, 8:32].transpose(2, 0, 1))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert frame.rotation == 90
    assert _to_rgb(frame, None).shape == (64, 48, 3)


def test_read_clip_matches_read_frames_then_crop(long_video):
    indices = list(range(60, 124, 4))
    window = ClipWindow(short_side=96, top=20, left=32, size=64)  # frames resize to 128x96
    clip = read_clip(long_video, indices, window)
    assert clip.dtype == np.uint8 and clip.shape == (16, 3, 64, 64) and clip.flags.c_contiguous
    assert [label_of(frame, channels_first=True) for frame in clip] == indices
    reference = read_frames(long_video, indices, resize=96)[:, 20:84, 32:96].transpose(0, 3, 1, 2)
    # The crop is scaled from the source pixels under it, so edges may move by a pixel.
    assert np.abs(clip.astype(int) - reference).mean() < 3


def test_read_clips_decodes_once_and_equals_each_clip_read_alone(long_video):
    first = (list(range(60, 124, 4)), ClipWindow(short_side=96, top=20, left=32, size=64))
    second = ([62, 62, 100, 199], ClipWindow(short_side=80, top=0, left=29, size=48, flip=True))  # overlap, repeat, last
    together = read_clips(long_video, [first, second])
    assert [clip.shape for clip in together] == [(16, 3, 64, 64), (4, 3, 48, 48)]
    for clip, (indices, window) in zip(together, [first, second]):
        np.testing.assert_array_equal(clip, read_clip(long_video, indices, window))
    assert [label_of(frame[:, :, ::-1], channels_first=True) for frame in together[1]] == [62, 62, 100, 199]  # unflipped


# Two training clips of `long_video` (64x48), read after shrinking frames to a 40 px short side.
KEPT_CLIPS = [
    (list(range(60, 124, 4)), ClipWindow(short_side=36, top=2, left=8, size=32)),
    ([62, 62, 199, 250], ClipWindow(short_side=40, top=0, left=10, size=32, flip=True)),  # repeat, last, past the end
]


def test_kept_frames_cut_the_clips_a_decode_reads(long_video):
    decoded = read_clips(long_video, KEPT_CLIPS, shrink_to=40)
    frames = read_all_frames(long_video, NUM_FRAMES, shrink_to=40)
    assert len(frames) == NUM_FRAMES and (frames[0].width, frames[0].height) == (53, 40)
    for from_file, from_memory in zip(decoded, cut_clips(frames, KEPT_CLIPS), strict=True):
        np.testing.assert_array_equal(from_file, from_memory)
    assert [label_of(frame, channels_first=True) for frame in decoded[0]] == KEPT_CLIPS[0][0]
    assert [label_of(frame[:, :, ::-1], channels_first=True) for frame in decoded[1]] == [62, 62, 199, 199]


@pytest.mark.parametrize("codec, suffix", [("mpeg4", ".avi"), ("libx264", ".mp4")])
def test_b_frames_that_no_wanted_frame_needs_are_not_decoded(tmp_path, codec, suffix):
    path = write_video(tmp_path / f"b_frames{suffix}", labelled_frames(NUM_FRAMES), codec=codec, b_frames=2)
    wanted = [7, 20, 100, 150, 180]
    with contextlib.closing(open_video(path)) as container:
        stream = container.streams.video[0]
        clock = FrameClock(stream)
        every = {clock.index_at(frame.pts): _to_rgb(frame, None) for frame in shown_frames(container, stream, Losses())}
        rewind(container)
        needed = sum(1 for _ in shown_frames(container, stream, Losses(), clock, wanted))
    assert len(every) == NUM_FRAMES and needed <= NUM_FRAMES - 50  # B-frames that nothing needs were skipped
    for index, frame in zip(wanted, read_frames(path, wanted), strict=True):
        np.testing.assert_array_equal(frame, every[index])  # the frames a full decode shows at those indices
    assert damage_found(path) is None  # skipped on purpose is not lost


def test_kept_frames_hold_their_pixels_without_the_decoders_padding(long_video):
    decoded = read_clips(long_video, KEPT_CLIPS, shrink_to=None)
    frames = read_all_frames(long_video, NUM_FRAMES)  # not scaled down: copied out of the decoder's padded frames
    with av.open(str(long_video)) as container:
        from_decoder = next(container.decode(video=0))
    assert (frames[0].width, frames[0].height) == (from_decoder.width, from_decoder.height)
    assert frame_bytes(frames[0]) < frame_bytes(from_decoder)
    for from_file, from_memory in zip(decoded, cut_clips(frames, KEPT_CLIPS), strict=True):
        np.testing.assert_array_equal(from_file, from_memory)


def test_kept_videos_decode_a_video_once_within_their_budget(tmp_path, long_video):
    kept_path, other_path, long_path = (tmp_path / name for name in ("kept.avi", "other.avi", "long.avi"))
    for path in (kept_path, other_path, long_path):
        path.write_bytes(long_video.read_bytes())
    info = probe_video(long_video)
    budget = NUM_FRAMES * 53 * 40 * 3 // 2 * 3 // 2  # 1.5 videos of 4:2:0 frames at 53x40 (rows are padded)
    longer = dataclasses.replace(info, num_frames=NUM_FRAMES + 1)
    kept = KeptVideos(budget, max_frames=NUM_FRAMES)
    kept.read_clips(long_path, longer, KEPT_CLIPS, 40)  # more frames than max_frames: never kept
    first = kept.read_clips(kept_path, info, KEPT_CLIPS, 40)
    kept.read_clips(other_path, info, KEPT_CLIPS, 40)  # past the budget
    assert list(kept.videos) == [str(kept_path)] and 0 < kept.used <= budget
    for path in (kept_path, other_path, long_path):
        path.unlink()
    for from_memory, from_file in zip(kept.read_clips(kept_path, info, KEPT_CLIPS, 40), first, strict=True):
        np.testing.assert_array_equal(from_memory, from_file)
    for path, path_info in ((other_path, info), (long_path, longer)):
        with pytest.raises(VideoReadError):
            kept.read_clips(path, path_info, KEPT_CLIPS, 40)


def test_kept_videos_filled_ahead_keep_what_fits_once_then_no_more(tmp_path, long_video):
    paths = [tmp_path / f"{name}.avi" for name in ("a", "b", "c", "broken")]
    for path in paths[:3]:
        path.write_bytes(long_video.read_bytes())
    paths[3].write_bytes(long_video.read_bytes()[:300])
    info = probe_video(long_video)
    kept = KeptVideos(NUM_FRAMES * 53 * 40 * 3 // 2 * 7 // 2, max_frames=NUM_FRAMES)  # 3.5 videos: the first three fit
    videos = [(str(path), info) for path in (paths[0], paths[0], paths[3], paths[1], paths[2])]  # a repeat, a broken file
    kept.fill(videos, shrink_to=40, threads=2)
    assert list(kept.videos) == [str(paths[0]), str(paths[1])] and kept.full
    for path in paths:
        path.unlink()
    np.testing.assert_array_equal(kept.read_clips(paths[0], info, KEPT_CLIPS, 40)[0], read_clips(long_video, KEPT_CLIPS, 40)[0])
    with pytest.raises(VideoReadError):  # not kept, and no longer kept on a read: decoded from the (gone) file
        kept.read_clips(paths[2], info, KEPT_CLIPS, 40)


def test_read_clip_window_position_and_flip(tmp_path):
    frames = np.zeros((20, 48, 64, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 255, 64).astype(np.uint8)  # red grows left to right
    frames[:, 24:, :, 2] = 200  # blue bottom half
    path = write_video(tmp_path / "gradient.avi", frames)
    # No scaling here (48 px short side already): the packed-RGB path, as swscale's unscaled planar one
    # garbles 24-pixel rows.
    left = read_clip(path, [3], ClipWindow(short_side=48, top=0, left=0, size=24))[0]
    right = read_clip(path, [3], ClipWindow(short_side=48, top=24, left=40, size=24))[0]
    assert left[0].mean() < 60 < 190 < right[0].mean()  # red: the left crop is dark, the right bright
    assert left[2].mean() < 30 and right[2].mean() > 170  # blue: top crop none, bottom crop all
    assert left[0, :, 0].mean() < left[0, :, -1].mean()
    flipped = read_clip(path, [3], ClipWindow(short_side=48, top=0, left=0, size=24, flip=True))[0]
    np.testing.assert_array_equal(flipped, left[:, :, ::-1])
    # A window past the frame's edge is moved inside it rather than read out of bounds.
    assert read_clip(path, [3], ClipWindow(short_side=48, top=40, left=60, size=24)).shape == (1, 3, 24, 24)


def test_read_clip_on_short_video_repeats_the_last_frame(tmp_path):
    path = write_video(tmp_path / "short.avi", labelled_frames(10))
    clip = read_clip(path, [0, 4, 8, 12, 16], ClipWindow(short_side=48, top=0, left=8, size=48))
    assert [label_of(frame, channels_first=True) for frame in clip] == [0, 4, 8, 9, 9]


def test_probe_video_fields(long_video):
    info = probe_video(long_video)
    assert info.path == str(long_video)
    assert (info.num_frames, info.width, info.height, info.rotation) == (NUM_FRAMES, 64, 48, 0)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(NUM_FRAMES / 25, abs=0.05)
    assert info.codec == "mpeg4"


def test_probe_counts_frames_when_the_header_does_not(tmp_path):
    path = write_video(tmp_path / "clip.mkv", labelled_frames(30))
    info = probe_video(path)
    assert info.num_frames == pytest.approx(30, abs=1) and info.fps == pytest.approx(25.0)


def test_probe_of_a_truncated_file_counts_the_frames_that_decode(tmp_path):
    whole = write_video(tmp_path / "whole.avi", labelled_frames(69))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.7)])
    decodable = _decode_until_error(cut)
    assert av.open(str(cut)).streams.video[0].frames == 69 and 1 <= decodable < 60  # the header still claims 69
    info = probe_video(cut)
    assert info.num_frames == decodable and info.duration == pytest.approx(decodable / 25)
    assert info.damage.startswith(f"the header claims 69 frames, {decodable} can be read")
    last = read_frames(cut, [info.num_frames - 1])  # the last frame a sampler may ask for is a real one
    assert label_of(last[0]) == decodable - 1
    assert probe_video(whole).damage is None


def test_probe_counts_from_the_index_and_sees_a_cut_file_whose_index_comes_first(tmp_path):
    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:  # moov (the index) first
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in labelled_frames(60):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    assert len(av.open(str(whole)).streams.video[0].index_entries) == 60
    assert probe_video(whole).num_frames == 60 and probe_video(whole).damage is None
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    info = probe_video(cut)
    assert info.num_frames < 60 and info.damage.startswith("the header claims 60 frames")


def _decode_until_error(path: Path) -> int:
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                count += 1
        except av.error.FFmpegError:
            pass
    return count


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "missing"])
def test_unreadable_files_raise_video_read_error_naming_the_path(tmp_path, long_video, kind):
    path = tmp_path / f"{kind}.avi"
    if kind == "truncated":
        path.write_bytes(long_video.read_bytes()[:300])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not a video\n" * 50)
    for read in (
        lambda: probe_video(path),
        lambda: read_frames(path, [0, 5]),
        lambda: read_clip(path, [0, 5], ClipWindow(48, 0, 0, 48)),
    ):
        with pytest.raises(VideoReadError) as caught:
            read()
        assert caught.value.path == str(path) and str(path) in str(caught.value)


def test_file_without_video_stream(tmp_path):
    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoReadError, match="no video stream"):
        probe_video(path)


def test_is_video_file():
    assert is_video_file(Path("a/b/v_X_g01_c01.AVI")) and is_video_file(Path("x.mp4"))
    assert not is_video_file(Path("notes.txt")) and not is_video_file(Path("avi"))
