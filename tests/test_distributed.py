"""Data-parallel training: two gloo processes on the CPU train what one process trains."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidcls.training import loop as training
from vidcls.data.datasets import EpochSampler
from vidcls.errors import VidclsError
from vidcls.training.loop import ARGS_FILE, CHECKPOINT, METRICS_FILE, TrainConfig, micro_batch_size
from vidcls.training.run import train

# --standalone: a rendezvous on localhost with a free port, so parallel test runs never collide.
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "vidcls"]
# One thread per process, so two processes fit two cores (torchrun's own default too).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
SETTINGS = dict(model="tiny", epochs=2, batch_size=6, seed=3, flip=False)


def test_each_process_takes_its_share_of_every_step():
    size, batch, world = 17, 6, 2
    one = list(EpochSampler(size, seed=1))
    shares = [list(EpochSampler(size, 1, rank, world)) for rank in range(world)]
    assert [len(share) for share in shares] == [9, 9]  # padded to equal shares, as DistributedSampler
    share_batch = batch // world
    for step in range(3):
        together = [key for share in shares for key in share[step * share_batch : (step + 1) * share_batch]]
        expected = one[step * batch : (step + 1) * batch]
        if step == 2:  # the last, short step: one process's 5 clips, plus the epoch's first as padding
            expected = expected + one[:1]
        assert sorted(together) == sorted(expected)


def test_batch_size_is_one_step_over_all_processes_and_micro_batches():
    assert micro_batch_size(8, world_size=2, grad_accum=2) == 2
    with pytest.raises(VidclsError, match="multiple of 6"):
        micro_batch_size(8, world_size=3, grad_accum=2)


@pytest.fixture(scope="module")
def one_process(motion_dataset, tmp_path_factory) -> Path:
    """The reference run in one process, keeping a copy of its checkpoint after each epoch."""
    output = tmp_path_factory.mktemp("ddp") / "one"

    def keep_each_epoch(path: Path, state: dict) -> None:
        save_checkpoint(path, state)
        shutil.copy(path, path.with_name(f"epoch{state['epoch']}.pt"))

    save_checkpoint = training.save_checkpoint
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "save_checkpoint", keep_each_epoch)
        train(TrainConfig(data=str(motion_dataset), output=str(output), workers=0, progress=False, **SETTINGS))
    return output


def _torchrun(*args) -> subprocess.CompletedProcess:
    completed = subprocess.run(TORCHRUN + [str(arg) for arg in args], capture_output=True, text=True, env=ENV)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def _assert_same_training(run: Path, reference: Path) -> None:
    """Same weights (to float error: two half-batch gradients are averaged) and the same metrics."""
    ours, theirs = (torch.load(path / CHECKPOINT, weights_only=False) for path in (run, reference))
    assert ours["epoch"] == theirs["epoch"] == SETTINGS["epochs"]
    for name, weights in theirs["model"].items():
        torch.testing.assert_close(ours["model"][name], weights, rtol=1e-4, atol=1e-4, msg=name)
    rows = [[json.loads(line) for line in (path / METRICS_FILE).read_text().splitlines()] for path in (run, reference)]
    for mine, expected in zip(*rows, strict=True):
        assert mine["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-5)
        assert mine["val_accuracy"] == expected["val_accuracy"] and mine["lr"] == expected["lr"]
        assert mine["val_videos"] == expected["val_videos"] == 6  # every validation video, each once


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains(one_process, motion_dataset, tmp_path):
    run = tmp_path / "two"
    completed = _torchrun("train", motion_dataset, "-o", run, "--model", "tiny", "--epochs", 2, "--batch-size", 6,
                          "--seed", 3, "--no-flip", "--workers", 0, "--report-to", "tensorboard")
    _assert_same_training(run, one_process)
    assert completed.stdout.count("saved") == 1  # only the main process reports
    assert len(list((run / "runs").rglob("events.out.tfevents.*"))) == 1  # and writes to the tracker
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["last.pt"]
    args = json.loads((run / ARGS_FILE).read_text())
    assert (args["world_size"], args["global_batch_size"], args["per_device_batch_size"], args["grad_accum"]) == (2, 6, 3, 1)


@pytest.mark.slow
def test_two_processes_resume_a_one_process_run_with_micro_batches(one_process, motion_dataset, tmp_path):
    run = tmp_path / "resumed"
    shutil.copytree(one_process, run)
    (run / "checkpoints" / "epoch1.pt").replace(run / CHECKPOINT)  # as if killed after epoch 1
    _torchrun("train", motion_dataset, "-o", run, "--resume", "--grad-accum", 3, "--workers", 0)
    _assert_same_training(run, one_process)
    resumed = json.loads((run / ARGS_FILE).read_text())["resumed"]
    assert [(r["after_epoch"], r["world_size"], r["per_device_batch_size"], r["grad_accum"]) for r in resumed] == [(1, 2, 1, 3)]
