"""A corpus of files made the ways phones, editors and web tools make them, each checked frame by
frame against what a player shows: the ffmpeg CLI's decode, with autorotate and the sample aspect
ratio applied, at the frames' own timestamps. Files are made with PyAV, and with the ffmpeg CLI
where only it makes them (a ``-c copy`` cut with an edit list, a timestamp offset)."""

from __future__ import annotations

import json
import logging
import random
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from videos import label_of, labelled_frames, write_vfr_video
from vidcls.errors import VideoReadError
from vidcls.data.crop import ClipWindow
from vidcls.data.decode import cut_clips, read_all_frames, read_clips, read_frames
from vidcls.data.probe import probe_video, read_video

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")), reason="needs the ffmpeg CLI (scripts/setup.sh installs it)"
)

FPS = 25
SOURCE_FRAMES = 150
# Mean absolute difference per frame (0-255) allowed between vidcls's frame and ffmpeg's: the
# colour conversion and, for anamorphic files, the horizontal scaling differ by a level or two.
TOLERANCE = 3.0


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def player_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame ffmpeg shows, as RGB at the display size, and its time in seconds."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,pix_fmt,sample_aspect_ratio,avg_frame_rate:frame=best_effort_timestamp_time", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    meta = json.loads(probe.stdout)
    stream = meta["streams"][0]
    sar = stream.get("sample_aspect_ratio", "1:1")
    ratio = Fraction(*map(int, sar.split(":"))) if sar not in ("0:1", "N/A") else Fraction(1)
    width = round(stream["width"] * ratio)
    width += width % 2
    height = stream["height"]
    pixels = f"format={stream['pix_fmt']}"  # scaled in YUV, as vidcls and GPU players scale, then made RGB
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"scale={width}:{height}:flags=bilinear,{pixels},setsar=1",
         "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    step = 1 / float(Fraction(stream["avg_frame_rate"]))
    times: list[float] = []
    for frame in meta["frames"]:  # ffmpeg 5 leaves the time of an MPEG-2 stream's last frames unset
        time = frame.get("best_effort_timestamp_time", "N/A")
        times.append(float(time) if time != "N/A" else times[-1] + step)
    assert len(times) == len(frames)
    return frames, np.array(times)


def assert_reads_as_a_player_shows(path: Path, decode_all: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """vidcls's frame N is the frame ffmpeg shows N / fps after its first one; every frame ffmpeg
    shows is vidcls's frame at its time. Returns vidcls's frames and the indices ffmpeg showed."""
    theirs, times = player_frames(path)
    info = probe_video(path, decode_all=decode_all)
    indices = np.round((times - times[0]) * info.fps).astype(int)
    assert info.num_frames == indices[-1] + 1
    ours = read_frames(path, range(info.num_frames))
    assert ours.shape[1:] == theirs.shape[1:] == (info.height, info.width, 3)
    difference = np.abs(ours[indices].astype(int) - theirs.astype(int)).mean(axis=(1, 2, 3))
    assert difference.max() < TOLERANCE
    return ours, indices


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Frame t shows t (`labelled_frames`): H.264 with B-frames and a keyframe a second, as phones write."""
    path = tmp_path_factory.mktemp("corpus") / "source.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "10", "bf": "2", "g": str(FPS)})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in labelled_frames(SOURCE_FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_source_reads_as_written(source):
    ours, _ = assert_reads_as_a_player_shows(source)
    assert [label_of(frame) for frame in ours] == list(range(SOURCE_FRAMES))


def test_copy_cut_mp4_shows_the_cut_frames_only(source, tmp_path):
    cut = tmp_path / "cut.mp4"
    _ffmpeg("-ss", "2.3", "-i", str(source), "-t", "2.56", "-c", "copy", str(cut))
    stored = av.open(str(cut)).streams.video[0].frames
    ours, indices = assert_reads_as_a_player_shows(cut)
    assert len(ours) < stored  # the pre-roll before the cut is in the file, hidden by its edit list
    labels = [label_of(frame) for frame in ours]
    assert labels == list(range(labels[0], labels[0] + len(ours))) and labels[0] >= 50  # the source's frames
    assert probe_video(cut).damage is None


def test_training_kept_frames_and_timeline_use_the_same_frames(source, tmp_path, untrained_model):
    """Training's kept frames, its per-clip decode and a timeline's windows read a cut MP4's frame N
    as the frame the player shows at N / fps; the timeline ends where the shown frames end."""
    from vidcls.models.loading import load_model
    from vidcls.data.views import window_views

    cut = tmp_path / "cut.mp4"
    _ffmpeg("-ss", "2.3", "-i", str(source), "-t", "2.56", "-c", "copy", str(cut))
    info = probe_video(cut)
    shown = [label_of(frame) for frame in read_frames(cut, range(info.num_frames))]
    window = ClipWindow(short_side=48, top=0, left=8, size=48)  # centred: both halves of the label
    indices = list(range(info.num_frames))
    kept = cut_clips(read_all_frames(cut, info.num_frames, 48), [(indices, window)])[0]
    decoded = read_clips(cut, [(indices, window)], 48)[0]
    assert [label_of(frame, channels_first=True) for frame in kept] == shown
    assert [label_of(frame, channels_first=True) for frame in decoded] == shown
    spans = [span for batch, _ in window_views(cut, load_model(str(untrained_model)).spec, 1.0, info) for span in batch]
    assert spans[-1][1] == pytest.approx(len(player_frames(cut)[0]) / FPS)


def test_mpeg_program_stream_starts_at_its_first_gop(tmp_path):
    path = tmp_path / "clip.mpg"
    with av.open(str(path), "w", format="vob") as container:
        stream = container.add_stream("mpeg2video", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.bit_rate, stream.codec_context.gop_size, stream.codec_context.max_b_frames = 4_000_000, 12, 2
        for frame in labelled_frames(60):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    assert av.open(str(path)).streams.video[0].start_time > 0
    ours, _ = assert_reads_as_a_player_shows(path)
    assert [label_of(frame) for frame in ours] == list(range(60))
    assert label_of(read_frames(path, [0])[0]) == 0  # a read from the start, alone, too


def test_mpeg_transport_stream_starts_at_its_first_frame(source, tmp_path):
    path = tmp_path / "clip.ts"
    _ffmpeg("-i", str(source), "-c", "copy", str(path))
    ours, _ = assert_reads_as_a_player_shows(path)
    assert [label_of(frame) for frame in ours] == list(range(SOURCE_FRAMES))


def test_mkv_whose_clock_starts_late_is_whole(source, tmp_path):
    for name in ("late.mkv", "late.webm"):
        late = tmp_path / name
        codec = ["-c", "copy"] if name.endswith(".mkv") else ["-c:v", "libvpx-vp9", "-crf", "10", "-b:v", "0"]
        _ffmpeg("-i", str(source), *codec, "-output_ts_offset", "30", str(late))
        info = probe_video(late)
        assert info.damage is None and info.num_frames == SOURCE_FRAMES
        ours, _ = assert_reads_as_a_player_shows(late)
        assert [label_of(frame) for frame in ours] == list(range(SOURCE_FRAMES))


def test_anamorphic_pixels_are_shown_at_display_width(tmp_path):
    path = tmp_path / "anamorphic.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x96:rate=25:duration=1", "-vf", "setsar=4/3",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    info = probe_video(path)
    assert (info.width, info.height) == (128, 96)  # what `vidcls data` reports: the display size
    assert_reads_as_a_player_shows(path)


def test_variable_frame_rate_frames_sit_at_their_times(tmp_path):
    stamps = [0, 40, 80, 200, 240, 280, 400, 440, 480, 600, 640, 680, 800, 840, 880, 1000]
    assert_reads_as_a_player_shows(write_vfr_video(tmp_path / "vfr.mkv", stamps))


@pytest.fixture()
def bad_packet(source, tmp_path) -> Path:
    """The source with two packets in its middle overwritten by random bytes."""
    data = bytearray(source.read_bytes())
    entries = list(av.open(str(source)).streams.video[0].index_entries)
    noise = random.Random(1)
    for entry in entries[70:72]:
        data[entry.pos : entry.pos + entry.size] = bytes(noise.randrange(256) for _ in range(entry.size))
    path = tmp_path / "bad_packet.mp4"
    path.write_bytes(bytes(data))
    return path


def test_bad_packet_loses_only_its_frames_and_is_named(bad_packet, caplog):
    with caplog.at_level(logging.WARNING, logger="vidcls.data.decode"):  # training reads clips so
        read_clips(bad_packet, [(range(SOURCE_FRAMES), ClipWindow(48, 0, 8, 48))], 48)
    assert f"damaged {bad_packet}: " in caplog.text and "could not be decoded" in caplog.text
    _, indices = assert_reads_as_a_player_shows(bad_packet, decode_all=True)
    lost = SOURCE_FRAMES - len(indices)
    assert 1 <= lost <= 4
    info = probe_video(bad_packet, decode_all=True)
    assert info.num_frames == SOURCE_FRAMES
    assert info.damage.startswith(f"{lost} of {SOURCE_FRAMES} frames could not be decoded")
    assert probe_video(bad_packet).damage is None  # the index cannot show it; reads name it as they go
    read_info, frames = read_video(bad_packet, lambda info: range(info.num_frames))
    assert read_info.damage.startswith(f"{lost} frames could not be decoded") and len(frames) == SOURCE_FRAMES


def test_still_image_and_single_frame_are_not_videos(tmp_path):
    still = tmp_path / "photo.mp4"
    Image.fromarray(labelled_frames(1)[0]).save(still, format="PNG")
    with pytest.raises(VideoReadError, match=r"a still image \(png\), not a video; a video needs at least 2 frames"):
        probe_video(still)
    single = tmp_path / "single.mp4"
    with av.open(str(single), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(labelled_frames(1)[0], format="rgb24")))
        container.mux(stream.encode())
    with pytest.raises(VideoReadError, match="1 frame, not a video"):
        probe_video(single)


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory) -> Path:
    """The `motion` preset saved as `vidcls train` saves a model: what a file is called does not
    depend on the weights."""
    from vidcls.models.loading import create_model
    from vidcls.models.saving import save_model

    out = tmp_path_factory.mktemp("model") / "motion"
    save_model(create_model("motion", ["A", "B"]), out)
    return out


def test_damage_and_still_images_are_named_where_users_look(untrained_model, bad_packet, tmp_path):
    import vidcls.cli.data  # noqa: F401  (registers the commands used)
    import vidcls.cli.predict  # noqa: F401
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from vidcls.cli._app import app
    from vidcls.serve.app import create_app

    still = tmp_path / "photo.mp4"
    Image.fromarray(labelled_frames(1)[0]).save(still, format="PNG")
    shown = CliRunner().invoke(app, ["predict", str(untrained_model), str(bad_packet), str(still), "--json", "--clips", "1", "--window", "1"])
    assert shown.exit_code == 1  # the still image is refused
    (result,) = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
    assert result["path"] == str(bad_packet) and result["warnings"][0].startswith("damaged: ")
    assert "frames could not be decoded" in result["warnings"][0] and len(result["windows"]) == 6
    assert f"failed {still}: a still image (png), not a video" in " ".join(shown.stderr.split())

    for label, path in (("A", bad_packet), ("B", bad_packet)):
        (tmp_path / "data" / label).mkdir(parents=True)
        shutil.copy(path, tmp_path / "data" / label / "clip.mp4")
    shutil.copy(still, tmp_path / "data" / "A" / "photo.mp4")
    shown = CliRunner().invoke(app, ["data", str(tmp_path / "data")])
    said = " ".join(shown.stderr.split())
    assert f"damaged {tmp_path / 'data' / 'A' / 'clip.mp4'}: 2 of {SOURCE_FRAMES} frames could not be decoded" in said
    assert "photo.mp4: a still image (png), not a video" in said

    with TestClient(create_app(untrained_model, tmp_dir=tmp_path / "uploads")) as client:
        answer = client.post("/predict", files={"file": ("bad.mp4", bad_packet.read_bytes())}, data={"window": "2"})
        assert answer.status_code == 200 and "frames could not be decoded" in answer.json()["warnings"][0]
        assert len(answer.json()["windows"]) == 3  # 6 s in 2 s windows, streamed through the model
        refused = client.post("/predict", files={"file": ("photo.mp4", still.read_bytes())})
        assert refused.status_code == 415 and "still image" in refused.text
