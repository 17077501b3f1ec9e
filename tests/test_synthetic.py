"""The synthetic dataset: UCF101-like files and layout, determinism, safety, and that the
label is in the motion (the right motion) and not in any single frame."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from vidcls.errors import DatasetError, OutputExistsError
from vidcls.data.synthetic import MARKER_NAME, MOTION_CLASSES, SPLITS, write_synthetic_dataset

WIDTH, HEIGHT = 96, 72
SMALL = {"width": WIDTH, "height": HEIGHT}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest split dataset (3 groups of 4 clips per class), easy, avi."""
    out = tmp_path_factory.mktemp("synthetic") / "data"
    write_synthetic_dataset(out, per_class=12, seed=0, **SMALL)
    return out


def _videos(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file() and path.name != MARKER_NAME)


def _decode(path: Path) -> np.ndarray:
    """All frames as a (T, H, W, 3) uint8 array."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _object_stats(frame: np.ndarray) -> tuple[float, float, int]:
    """Centre x, centre y and area of the pixels far from the background colour.

    In easy mode the object covers well under half the frame, so the per-channel median is
    the background, and object and background differ by >= 55 per channel while the
    background's gradient stays within +-15."""
    distance = np.abs(frame.astype(np.int32) - np.median(frame, axis=(0, 1))).sum(axis=2)
    ys, xs = np.nonzero(distance > 120)
    return float(xs.mean()), float(ys.mean()), int(xs.size)


def test_split_layout_and_ucf101_names(dataset: Path) -> None:
    assert (dataset / MARKER_NAME).is_file()
    assert sorted(p.name for p in dataset.iterdir() if p.is_dir()) == sorted(SPLITS)
    for split in SPLITS:
        assert sorted(p.name for p in (dataset / split).iterdir()) == sorted(MOTION_CLASSES)
    for video in _videos(dataset):
        label = video.parent.name
        assert re.fullmatch(rf"v_{label}_g\d\d_c\d\d\.avi", video.name), video
    assert len(_videos(dataset)) == 12 * len(MOTION_CLASSES)


def test_summary_counts_match_files(tmp_path: Path) -> None:
    summary = write_synthetic_dataset(tmp_path / "d", per_class=5, layout="flat", **SMALL)
    assert summary.classes == MOTION_CLASSES
    assert summary.num_files == len(_videos(tmp_path / "d")) == 5 * len(MOTION_CLASSES)
    assert summary.counts == {"all": {label: 5 for label in MOTION_CLASSES}}


def test_every_file_decodes_as_mpeg4_with_its_frame_count(dataset: Path) -> None:
    for video in _videos(dataset):
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "mpeg4"
            declared = stream.frames
        frames = _decode(video)
        assert frames.shape[1:] == (HEIGHT, WIDTH, 3)
        assert 50 <= len(frames) <= 75
        assert len(frames) == declared


def test_no_group_in_two_splits_and_every_split_has_every_class(dataset: Path) -> None:
    split_of: dict[tuple[str, str], set[str]] = {}
    for video in _videos(dataset):
        label, group = re.match(r"v_(\w+?)_(g\d\d)_", video.name).groups()
        split_of.setdefault((label, group), set()).add(video.parent.parent.name)
    assert all(len(splits) == 1 for splits in split_of.values())
    for label in MOTION_CLASSES:
        assert {next(iter(s)) for (lab, _), s in split_of.items() if lab == label} == set(SPLITS)


def test_same_seed_same_frames_different_seed_different(dataset: Path, tmp_path: Path) -> None:
    """Clip g01_c01 does not depend on per_class or layout, only on seed and settings."""
    again = write_synthetic_dataset(tmp_path / "again", per_class=1, layout="flat", seed=0, **SMALL).root
    other = write_synthetic_dataset(tmp_path / "other", per_class=1, layout="flat", seed=1, **SMALL).root
    name = "v_MoveLeft_g01_c01.avi"
    reference = _decode(dataset / "train" / "MoveLeft" / name)
    assert np.array_equal(_decode(again / "MoveLeft" / name), reference)
    different = _decode(other / "MoveLeft" / name)
    assert different.shape != reference.shape or not np.array_equal(different, reference)


def test_mp4_is_h264_and_decodes(tmp_path: Path) -> None:
    root = tmp_path / "mp4"
    write_synthetic_dataset(root, per_class=1, layout="flat", video_format="mp4", **SMALL)
    videos = _videos(root)
    assert [v.suffix for v in videos] == [".mp4"] * len(MOTION_CLASSES)
    with av.open(str(videos[0])) as container:
        assert container.streams.video[0].codec_context.name in ("h264", "mpeg4")
    assert 50 <= len(_decode(videos[0])) <= 75


def test_hard_mode_has_a_textured_background(tmp_path: Path) -> None:
    easy = write_synthetic_dataset(tmp_path / "easy", per_class=1, layout="flat", **SMALL).root
    hard = tmp_path / "hard"
    write_synthetic_dataset(hard, per_class=1, layout="flat", difficulty="hard", **SMALL)

    def roughness(root: Path) -> float:  # mean absolute difference of horizontal neighbours
        frame = _decode(root / "ZoomIn" / "v_ZoomIn_g01_c01.avi")[0].astype(np.int32)
        return float(np.abs(np.diff(frame, axis=1)).mean())

    assert roughness(hard) > 3 * roughness(easy)


def test_refuses_to_overwrite_a_folder_that_is_not_a_synthetic_dataset(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_synthetic_dataset(out, per_class=1, layout="flat", **SMALL)
    with pytest.raises(OutputExistsError, match="not a vidcls synthetic dataset"):
        write_synthetic_dataset(out, per_class=1, layout="flat", overwrite=True, **SMALL)
    assert (out / "notes.txt").read_text() == "keep me"


def test_overwrite_replaces_only_a_previous_synthetic_dataset(tmp_path: Path) -> None:
    out = tmp_path / "data"
    write_synthetic_dataset(out, per_class=1, layout="flat", **SMALL)
    write_synthetic_dataset(out, per_class=2, layout="flat", overwrite=True, **SMALL)
    assert len(_videos(out)) == 2 * len(MOTION_CLASSES)
    (out / "MoveUp" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        write_synthetic_dataset(out, per_class=1, layout="flat", overwrite=True, **SMALL)
    assert (out / "MoveUp" / "notes.txt").exists()


def test_bad_settings_are_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="at least 12"):
        write_synthetic_dataset(tmp_path / "d", per_class=11, **SMALL)
    with pytest.raises(DatasetError, match="even"):
        write_synthetic_dataset(tmp_path / "d", per_class=12, width=95, height=72)
    with pytest.raises(DatasetError, match="seed"):
        write_synthetic_dataset(tmp_path / "d", per_class=12, seed=-1, **SMALL)
    assert not (tmp_path / "d").exists()


def test_position_mid_clip_does_not_give_left_from_right_away(dataset: Path) -> None:
    """Mid-clip x of MoveLeft and MoveRight clips cover overlapping ranges (paths are shared, reversed)."""
    def middle(frames):
        return frames[len(frames) // 2]

    starts = {
        label: [_object_stats(middle(_decode(v)))[0] for v in _videos(dataset) if v.parent.name == label]
        for label in ("MoveLeft", "MoveRight")
    }
    assert min(starts["MoveLeft"]) < max(starts["MoveRight"])


@pytest.mark.parametrize("label", MOTION_CLASSES)
def test_motion_goes_the_labelled_way(dataset: Path, label: str) -> None:
    for video in (v for v in _videos(dataset) if v.parent.name == label):
        frames = _decode(video)
        (x0, y0, area0), (x1, y1, area1) = _object_stats(frames[0]), _object_stats(frames[-1])
        dx, dy = x1 - x0, y1 - y0
        expected = {
            "MoveLeft": dx < -0.1 * WIDTH and abs(dy) < abs(dx) / 2,
            "MoveRight": dx > 0.1 * WIDTH and abs(dy) < abs(dx) / 2,
            "MoveUp": dy < -0.1 * HEIGHT and abs(dx) < abs(dy) / 2,
            "MoveDown": dy > 0.1 * HEIGHT and abs(dx) < abs(dy) / 2,
            "ZoomIn": area1 > 1.5 * area0,
            "ZoomOut": area0 > 1.5 * area1,
        }[label]
        assert expected, (video.name, dx, dy, area0, area1)


def test_cli_writes_and_reports_counts(tmp_path: Path) -> None:
    from vidcls.cli._app import app
    import vidcls.cli.sample  # noqa: F401  registers the command

    result = CliRunner().invoke(app, ["sample", str(tmp_path / "d"), "--per-class", "1", "--layout", "flat"])
    assert result.exit_code == 0, result.output
    assert "MoveLeft" in result.output and "6 videos" in result.output
    again = CliRunner().invoke(app, ["sample", str(tmp_path / "d"), "--per-class", "1", "--layout", "flat"])
    assert isinstance(again.exception, OutputExistsError)
