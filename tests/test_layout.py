"""Dataset discovery: layouts, label maps, group splits, leakage warnings and bad files."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from conftest import CLASSES
from videos import moving_square, write_video
from vidcls.errors import DatasetError
from vidcls.data.discovery import SPLIT_FILE, check_trainable, discover_dataset, group_of, save_split


def _flat_dataset(root: Path, groups: int = 5, clips: int = 2) -> Path:
    for label in CLASSES[:2]:
        for group in range(1, groups + 1):
            for clip in range(1, clips + 1):
                write_video(root / label / f"v_{label}_g{group:02d}_c{clip:02d}.avi", moving_square(label, 12, 32, 24))
    return root


def test_split_layout_reads_labels_and_splits(motion_dataset):
    index = discover_dataset(motion_dataset)
    assert index.layout == "split"
    assert index.labels == sorted(CLASSES)
    assert index.label2id == {label: i for i, label in enumerate(sorted(CLASSES))}
    assert {s: len(r) for s, r in index.splits.items()} == {"train": 18, "val": 6, "test": 6}
    assert not index.bad_files and not index.leaked_groups
    info = index.splits["train"][0].info
    assert (info.width, info.height, info.num_frames, info.fps) == (96, 72, 40, 25.0)


def test_bad_files_are_named_with_reason_and_left_out(broken_dataset):
    root, bad_paths = broken_dataset
    index = discover_dataset(root)
    reasons = {bad.path: bad.reason for bad in index.bad_files}
    assert set(reasons) == set(bad_paths)
    assert "empty" in reasons[bad_paths[1]]
    assert "not a video" in reasons[bad_paths[2]]
    used = {record.path for records in index.splits.values() for record in records}
    assert not used & set(bad_paths)
    assert len(used) == 30


def test_flat_layout_splits_by_group_without_leakage(tmp_path):
    index = discover_dataset(_flat_dataset(tmp_path), val_ratio=0.2, test_ratio=0.2, seed=3)
    assert index.layout == "flat"
    groups = {split: {r.group for r in records} for split, records in index.splits.items()}
    assert all(groups.values()), "every split gets at least one group"
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"] and not groups["val"] & groups["test"]
    for records in index.splits.values():  # both clips of a group travel together
        for record in records:
            assert sum(r.group == record.group for r in records) == 2
    assert not index.leaked_groups


def test_flat_split_is_stable_for_a_seed_and_changes_with_it(tmp_path):
    root = _flat_dataset(tmp_path, groups=8, clips=1)
    first = discover_dataset(root, seed=1).splits
    again = discover_dataset(root, seed=1).splits
    other = [discover_dataset(root, seed=s).splits for s in range(2, 6)]
    paths = lambda splits: {k: [r.path for r in v] for k, v in splits.items()}  # noqa: E731
    assert paths(first) == paths(again)
    assert any(paths(o) != paths(first) for o in other)


def test_files_without_groups_are_split_per_file(tmp_path):
    for label in CLASSES[:2]:
        for n in range(6):
            write_video(tmp_path / label / f"clip{n}.avi", moving_square(label, 12, 32, 24))
    index = discover_dataset(tmp_path, val_ratio=0.2, test_ratio=0.2)
    assert {s: len(r) for s, r in index.splits.items()} == {"train": 8, "val": 2, "test": 2}


def test_group_in_two_splits_is_warned_about(motion_dataset, tmp_path, caplog):
    root = tmp_path / "leaky"
    shutil.copytree(motion_dataset, root)
    source = root / "train" / "MoveUp" / "v_MoveUp_g01_c01.avi"
    shutil.copy(source, root / "test" / "MoveUp" / "v_MoveUp_g01_c03.avi")
    with caplog.at_level(logging.WARNING):
        index = discover_dataset(root)
    assert index.leaked_groups == ["MoveUp/g01"]
    assert "MoveUp/g01" in caplog.text


def test_group_of_reads_ucf101_names():
    assert group_of(Path("v_ApplyEyeMakeup_g08_c01.avi"), "ApplyEyeMakeup") == "ApplyEyeMakeup/g08"
    assert group_of(Path("holiday.mp4"), "X") is None


def test_missing_and_empty_folders_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        discover_dataset(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no readable videos"):
        discover_dataset(tmp_path)


def test_class_folder_without_a_readable_video_is_named(tmp_path):
    write_video(tmp_path / "Good" / "a.avi", moving_square("MoveUp", 12, 32, 24))
    (tmp_path / "Broken").mkdir()
    (tmp_path / "Broken" / "a.avi").write_bytes(b"junk")
    with pytest.raises(DatasetError, match=r"Broken: class folder with no readable video \(1 unreadable, e.g. a.avi"):
        discover_dataset(tmp_path)
    (tmp_path / "Broken" / "a.avi").unlink()
    with pytest.raises(DatasetError, match="Broken: class folder with no readable video .it holds no files"):
        discover_dataset(tmp_path)


def test_missing_split_is_reported_by_name(tmp_path):
    for label in CLASSES[:2]:
        write_video(tmp_path / "train" / label / f"v_{label}_g01_c01.avi", moving_square(label, 12, 32, 24))
    index = discover_dataset(tmp_path)
    with pytest.raises(DatasetError, match="split 'test' has no readable videos"):
        index.split("test")


def test_any_split_folder_means_split_layout(tmp_path):
    for label in CLASSES[:2]:
        write_video(tmp_path / "test" / label / f"v_{label}_g01_c01.avi", moving_square(label, 12, 32, 24))
    index = discover_dataset(tmp_path)
    assert (index.layout, index.labels) == ("split", sorted(CLASSES[:2]))
    assert {s: len(r) for s, r in index.splits.items()} == {"train": 0, "val": 0, "test": 2}
    with pytest.raises(DatasetError, match="split 'train' has no readable videos .splits found: test .2.."):
        index.split("train")


def test_class_folders_named_like_splits_are_flagged(tmp_path):
    write_video(tmp_path / "Test" / "a.avi", moving_square("MoveUp", 12, 32, 24))
    write_video(tmp_path / "Walk" / "a.avi", moving_square("MoveLeft", 12, 32, 24))
    with pytest.raises(DatasetError, match=r"split folders \(Test\) beside other folders \(Walk\).*named like a split"):
        discover_dataset(tmp_path)
    (tmp_path / "Walk" / "a.avi").rename(tmp_path / "Test" / "b.avi")
    (tmp_path / "Walk").rmdir()
    with pytest.raises(DatasetError, match="Test: holds videos directly.*if 'Test' is a class, rename it"):
        discover_dataset(tmp_path)


def test_truncated_video_is_named_damaged_and_keeps_its_readable_frames(tmp_path, caplog):
    _flat_dataset(tmp_path, groups=2, clips=1)
    whole = write_video(tmp_path / "whole.avi", moving_square("MoveUp", 69, 32, 24))
    truncated = tmp_path / CLASSES[0] / "v_cut_g09_c01.avi"
    truncated.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    whole.unlink()
    with caplog.at_level(logging.WARNING):
        index = discover_dataset(tmp_path)
    [damaged] = index.damaged
    assert damaged.path == truncated and "header claims 69 frames" in damaged.reason
    [record] = [r for records in index.splits.values() for r in records if r.path == truncated]
    assert 1 <= record.info.num_frames < 60
    assert f"damaged {truncated}" in caplog.text


def test_saved_split_replaces_the_seeded_one_for_the_same_folder(tmp_path, caplog):
    root = _flat_dataset(tmp_path / "data", groups=8, clips=1)
    trained = discover_dataset(root, seed=3)
    save_split(trained, tmp_path, seed=3, val_ratio=0.15, test_ratio=0.15)
    paths = lambda index: {k: [r.path for r in v] for k, v in index.splits.items()}  # noqa: E731
    assert paths(discover_dataset(root)) != paths(trained), "the default seed would split otherwise"
    new = write_video(root / CLASSES[0] / "v_new_g20_c01.avi", moving_square(CLASSES[0], 12, 32, 24))
    with caplog.at_level(logging.WARNING):
        again = discover_dataset(root, model_dir=tmp_path)
    assert paths(again) == paths(trained) and again.split_source == str(tmp_path / SPLIT_FILE)
    assert f"{new} is not in the split the model was trained with" in caplog.text
    other = _flat_dataset(tmp_path / "other", groups=4, clips=1)
    for path in other.rglob("*.avi"):
        path.rename(path.with_name("x" + path.name))
    assert discover_dataset(other, model_dir=tmp_path).split_source == "seed 0"  # not the folder it was trained on


def test_one_class_cannot_be_trained_on(tmp_path):
    write_video(tmp_path / "Only" / "a.avi", moving_square("MoveUp", 12, 32, 24))
    with pytest.raises(DatasetError, match="found one class .Only.; a classifier needs two or more"):
        check_trainable(discover_dataset(tmp_path))
