"""Training: a loadable transformers directory, resume after a kill, no silent overwrite, bad input."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import CLASSES
from vidcls.data.datasets import TrainClipDataset
from vidcls.errors import OutputExistsError, VidclsError
from vidcls.data.discovery import discover_dataset
from vidcls.models.loading import create_model
from vidcls.training.run_state import RunState
from vidcls.training.loop import CHECKPOINT, METRICS_FILE, TrainConfig
from vidcls.training.run import train

VIDCLS = [sys.executable, "-m", "vidcls.cli"]


def _config(data: Path, output: Path, **overrides) -> TrainConfig:
    settings = dict(model="tiny", epochs=1, batch_size=6, workers=0, flip=False, progress=False)
    return TrainConfig(data=str(data), output=str(output), **{**settings, **overrides})


def test_output_is_a_transformers_model_directory(trained_model, motion_dataset):
    from transformers import pipeline

    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "video_preprocessor_config.json",
                 METRICS_FILE, "training_curve.png"):
        assert (trained_model / name).is_file(), name
    config = json.loads((trained_model / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(sorted(CLASSES))}
    assert config["vidcls"] == {"num_frames": 8, "sample_rate": 4, "sampling": "segment", "clips": 4}
    classifier = pipeline("video-classification", model=str(trained_model))
    video = next((motion_dataset / "test" / "MoveUp").glob("*.avi"))
    result = classifier(str(video), top_k=3)
    assert sorted(r["label"] for r in result) == sorted(CLASSES)
    assert abs(sum(r["score"] for r in result) - 1) < 1e-4


def test_metrics_are_logged_per_epoch(trained_model):
    rows = [json.loads(line) for line in (trained_model / METRICS_FILE).read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert all(0 <= row["val_accuracy"] <= 1 and row["train_loss"] > 0 and row["clips_per_s"] > 0 for row in rows)
    best_so_far = -1.0
    for number, row in enumerate(rows):  # "best" exactly when its 3-epoch mean ties or beats every earlier one
        recent = [r["val_accuracy"] for r in rows[max(0, number - 2) : number + 1]]
        assert row["val_accuracy_smoothed"] == pytest.approx(sum(recent) / len(recent))
        assert row["best"] == (row["val_accuracy_smoothed"] >= best_so_far)
        best_so_far = max(best_so_far, row["val_accuracy_smoothed"])


@pytest.mark.slow
def test_refuses_to_overwrite_and_overwrite_keeps_foreign_files(motion_dataset, tmp_path):
    output = tmp_path / "run"
    output.mkdir()
    (output / "notes.md").write_text("mine")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        train(_config(motion_dataset, output))
    train(_config(motion_dataset, output, overwrite=True))
    assert (output / "notes.md").read_text() == "mine"
    assert (output / "model.safetensors").is_file()


def test_resume_without_checkpoint_is_refused(motion_dataset, tmp_path):
    with pytest.raises(VidclsError, match="nothing to resume"):
        train(_config(motion_dataset, tmp_path / "fresh", resume=True))


@pytest.mark.slow
def test_resume_after_a_kill_is_the_run_that_was_never_killed(motion_dataset, tmp_path):
    settings = ["--model", "tiny", "--epochs", "4", "--batch-size", "6", "--workers", "1", "--no-flip", "--seed", "5"]
    whole = tmp_path / "whole"
    subprocess.run(VIDCLS + ["train", str(motion_dataset), "--output", str(whole), *settings], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = tmp_path / "killed"
    process = subprocess.Popen(VIDCLS + ["train", str(motion_dataset), "--output", str(killed), *settings],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and _checkpoint_epoch(killed) < 2:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = _checkpoint_epoch(killed)
    assert 2 <= killed_after < 4
    # Resumed with other settings asked for: the run's own are kept, and the resume is recorded.
    train(_config(motion_dataset, killed, epochs=9, lr=0.5, resume=True, workers=0))
    ours, theirs = (torch.load(run / CHECKPOINT, weights_only=False) for run in (killed, whole))
    assert ours["epoch"] == theirs["epoch"] == 4
    for name, weights in theirs["model"].items():
        torch.testing.assert_close(ours["model"][name], weights, rtol=1e-5, atol=1e-6, msg=name)
    assert ours["scheduler"] == theirs["scheduler"]
    rows = [[json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()] for run in (killed, whole)]
    for mine, reference in zip(*rows, strict=True):
        assert mine["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-5)
        assert mine["val_accuracy"] == reference["val_accuracy"] and mine["lr"] == reference["lr"]
    args = json.loads((killed / "train_args.json").read_text())
    assert args["epochs"] == 4 and args["lr"] == 1e-3 and args["seed"] == 5
    assert [entry["after_epoch"] for entry in args["resumed"]] == [killed_after]


def _checkpoint_epoch(run: Path) -> int:
    """The last epoch a run's checkpoint holds (0 before the first); it is replaced atomically, never half-written."""
    return torch.load(run / CHECKPOINT, weights_only=False)["epoch"] if (run / CHECKPOINT).exists() else 0


def test_resume_refuses_other_classes(motion_dataset, trained_model, tmp_path):
    import shutil

    data = tmp_path / "two"
    for split in ("train", "val"):
        for label in CLASSES[:2]:
            shutil.copytree(motion_dataset / split / label, data / split / label)
    run = tmp_path / "run"
    train(_config(motion_dataset, run))
    with pytest.raises(VidclsError, match="classes"):
        train(_config(data, run, epochs=2, resume=True))


def test_a_video_that_breaks_mid_training_is_replaced(motion_dataset, tmp_path, caplog):
    index = discover_dataset(motion_dataset)
    records = index.split("train")[:4]
    broken = tmp_path / "broken.avi"
    broken.write_bytes(records[0].path.read_bytes()[:400])  # readable header at probe time is not needed
    records[0] = type(records[0])(broken, records[0].label, records[0].info)
    spec = create_model("tiny", index.labels).spec
    dataset = TrainClipDataset(records, index.label2id, spec, flip=False)
    with caplog.at_level(logging.WARNING):
        clip, label = dataset[(0, 0, 1)]  # (index, seed, epoch), as EpochSampler yields
    assert clip.shape == (1, 8, 3, 64, 64) and clip.dtype == torch.uint8
    assert str(broken) in caplog.text


def test_training_clips_are_the_same_from_kept_videos(motion_dataset, tmp_path):
    import shutil

    index = discover_dataset(shutil.copytree(motion_dataset, tmp_path / "data"))
    records, spec = index.split("train")[:3], create_model("motion", index.labels).spec
    keys = [(i, 0, epoch) for epoch in (1, 2) for i in range(3)]  # (index, seed, epoch)
    decoded = [TrainClipDataset(records, index.label2id, spec)[key] for key in keys]
    kept = TrainClipDataset(records, index.label2id, spec, kept_bytes=1 << 30)
    first_epoch = [kept[key] for key in keys[:3]]
    assert len(kept.kept.videos) == 3
    shutil.rmtree(tmp_path / "data")  # the second epoch reads no file
    for (clips, label), (reference, reference_label) in zip(first_epoch + [kept[key] for key in keys[3:]], decoded):
        assert label == reference_label and torch.equal(clips, reference)
    assert not torch.equal(decoded[0][0], decoded[3][0])  # epochs draw other clips


def _best_epochs(accuracies: list[float | None]) -> list[int]:
    """The best epoch after each epoch, for these validation accuracies (None: no val split)."""
    state = RunState()
    best = []
    for epoch, accuracy in enumerate(accuracies, 1):
        state.record({"epoch": epoch} if accuracy is None else {"epoch": epoch, "val_accuracy": accuracy})
        best.append(state.best_epoch)
    return best


def test_the_kept_epoch_is_the_best_over_neighbouring_epochs_not_a_lone_spike():
    # Epoch 3 alone is the highest, but 7-9 are as good averaged over three epochs, and later.
    assert _best_epochs([0.5, 0.8, 1.0, 0.8, 0.9, 0.9, 0.96, 0.96, 0.96, 0.9]) == [1, 2, 3, 4, 5, 5, 7, 8, 9, 9]
    nan = float("nan")
    assert _best_epochs([nan, nan, 0.5, 0.4]) == [1, 1, 3, 3]  # unreadable val videos never win, but epoch 1 is saved
    assert _best_epochs([None, None]) == [1, 2]  # without a val split the last epoch is kept


@pytest.mark.slow
def test_cli_train_names_bad_files_and_exits_zero(broken_dataset, tmp_path):
    root, bad_paths = broken_dataset
    command = VIDCLS + ["train", str(root), "-o", str(tmp_path / "cli"), "--epochs", "1", "--batch-size", "6",
                        "--workers", "0", "--no-flip"]
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert completed.returncode == 0, completed.stderr
    for path in bad_paths:
        assert path.name in completed.stderr
    assert "saved" in completed.stdout


@pytest.mark.slow
def test_cli_reports_unknown_model_in_one_line(motion_dataset, tmp_path):
    command = VIDCLS + ["train", str(motion_dataset), "-o", str(tmp_path / "x"), "--model", "nosuchpreset"]
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert completed.returncode == 1
    assert "nosuchpreset" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.parametrize("budget, kept", [(1 << 30, True), (0, False)])
def test_validation_batches_are_kept_after_the_first_pass_when_they_fit(tmp_path, budget, kept):
    import shutil

    from torch.utils.data import DataLoader

    from conftest import write_motion_dataset
    from vidcls.data.datasets import EvalClipDataset, KeptBatches, collate_eval
    from vidcls.data.clip_spec import ClipSpec

    root = write_motion_dataset(tmp_path / "data", num_frames=24)
    records = discover_dataset(root).split("val")
    loader = KeptBatches(DataLoader(EvalClipDataset(records, ClipSpec(num_frames=4, crop_size=32, resize_short_side=32)),
                                    batch_size=2, collate_fn=collate_eval), budget=budget)
    first = [views for views, _, _ in loader]
    shutil.rmtree(root)  # a second pass that read the files would now fail on every video
    second = [(views, failed) for views, _, failed in loader]
    if kept:
        assert all(torch.equal(a, b) for a, (b, _) in zip(first, second, strict=True))
    else:
        assert all(views is None and failed for views, failed in second)


def test_a_batch_holds_each_video_s_clips_side_by_side(motion_dataset):
    from torch.utils.data import DataLoader

    from vidcls.data.datasets import EpochSampler, collate_train

    index = discover_dataset(motion_dataset)
    spec = create_model("tiny", index.labels).spec
    records = index.split("train")
    dataset = TrainClipDataset(records, index.label2id, spec, flip=False, clips_per_video=2)
    sampler = EpochSampler(len(dataset), seed=0)
    sampler.set_epoch(1)
    clips, labels = next(iter(DataLoader(dataset, batch_size=3, sampler=sampler, collate_fn=collate_train)))
    assert clips.shape == (6, 8, 3, 64, 64) and labels.tolist()[::2] == labels.tolist()[1::2]
    keys = list(sampler)[:3]
    for pair, key in enumerate(keys):
        alone = dataset[key][0]  # the same key draws the same two clips
        assert torch.equal(clips[2 * pair : 2 * pair + 2], alone)
        assert not torch.equal(alone[0], alone[1])  # two different draws of one video
