"""Experiment trackers: `vidcls train --report-to` read back with TensorBoard's reader and MLflow's client."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import vidcls
from vidcls.errors import VidclsError
from vidcls.training import loop
from vidcls.training.loop import ARGS_FILE, CHECKPOINT, TrainConfig
from vidcls.training.run import train
from vidcls.training.tracking import EPOCH_SCALARS, log_test_scores, resolve_backends

VIDCLS = [sys.executable, "-m", "vidcls.cli"]
SETTINGS = dict(model="tiny", epochs=3, batch_size=6, workers=0, flip=False, progress=False)
TEST_SCALARS = {"test/accuracy", "test/mean_class_accuracy", "test/videos"}


def _installed_only(monkeypatch, *modules: str) -> None:
    """Make every tracker library but ``modules`` look uninstalled."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: find_spec(name) if name in modules or name not in ("tensorboard", "mlflow") else None
    )


def test_report_to_names_trackers_and_refuses_what_is_missing(monkeypatch):
    assert resolve_backends("none") == [] and resolve_backends("") == []
    assert resolve_backends("MLflow, tensorboard") == ["mlflow", "tensorboard"]
    with pytest.raises(VidclsError, match="unknown tracker wandb"):
        resolve_backends("tensorboard,wandb")
    _installed_only(monkeypatch, "tensorboard")
    assert resolve_backends("all") == ["tensorboard"]
    with pytest.raises(VidclsError, match=r"pip install 'vidcls\[mlflow\]'"):
        resolve_backends("mlflow")
    _installed_only(monkeypatch)
    assert resolve_backends("all") == [] and resolve_backends(TrainConfig.report_to) == []


def test_the_default_reports_nowhere_and_writes_nothing_extra(trained_model):
    assert TrainConfig.report_to == "none"
    assert not (trained_model / "runs").exists()
    assert "tracking" not in json.loads((trained_model / ARGS_FILE).read_text())


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a TensorBoard folder as (step, value) pairs, read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.slow
def test_cli_report_to_tensorboard_is_read_back_with_every_scalar(motion_dataset, tmp_path):
    output = tmp_path / "run"
    command = VIDCLS + ["train", str(motion_dataset), "-o", str(output), "--model", "tiny", "--epochs", "2",
                        "--batch-size", "6", "--workers", "0", "--report-to", "tensorboard"]
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert completed.returncode == 0, completed.stderr
    tracking = json.loads((output / ARGS_FILE).read_text())["tracking"]
    log_dir = output / tracking["tensorboard"]["log_dir"]
    assert log_dir.parent == output / "runs"
    rows = [json.loads(line) for line in (output / loop.METRICS_FILE).read_text().splitlines()]
    steps = tracking["step"] // 2
    scalars = _scalars(log_dir)
    assert set(scalars) == set(EPOCH_SCALARS.values())
    for key, tag in EPOCH_SCALARS.items():
        assert scalars[tag] == [(steps * row["epoch"], pytest.approx(row[key], rel=1e-6)) for row in rows], tag
    result = vidcls.evaluate(output, motion_dataset, workers=0)
    assert "TensorBoard" in result.outputs["tracker"]
    scalars = _scalars(log_dir)
    assert TEST_SCALARS <= set(scalars)
    assert scalars["test/accuracy"] == [(tracking["step"], pytest.approx(result.top1))]


@pytest.mark.slow
def test_mlflow_run_survives_a_kill_and_gets_the_model_and_test_scores(motion_dataset, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's default store is in the working directory
    output = tmp_path / "run"
    config = TrainConfig(data=str(motion_dataset), output=str(output), report_to="mlflow,tensorboard", **SETTINGS)
    save_checkpoint = loop.save_checkpoint

    def killed_at_epoch_2(path, state):  # after the trackers logged epoch 2, before its checkpoint
        if state["epoch"] == 2:
            raise RuntimeError("killed")
        save_checkpoint(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", killed_at_epoch_2)
    with pytest.raises(RuntimeError, match="killed"):
        train(dataclasses.replace(config))
    monkeypatch.setattr(loop, "save_checkpoint", save_checkpoint)
    train(dataclasses.replace(config, resume=True))

    tracking = json.loads((output / ARGS_FILE).read_text())["tracking"]
    assert tracking["mlflow"]["tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking["mlflow"]["tracking_uri"])
    run = client.get_run(tracking["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    params = json.loads((output / ARGS_FILE).read_text())
    assert {key: run.data.params[key] for key in ("model", "epochs", "lr", "report_to")} == {
        key: str(params[key]) for key in ("model", "epochs", "lr", "report_to")
    }
    rows = [json.loads(line) for line in (output / loop.METRICS_FILE).read_text().splitlines()]
    steps = tracking["step"] // 3
    for key, tag in EPOCH_SCALARS.items():
        history = client.get_metric_history(run.info.run_id, tag)
        # Epoch 2 was logged before the kill and again by the resumed run; both at its step.
        assert sorted({m.step for m in history}) == [steps, 2 * steps, 3 * steps], tag
        assert history[-1].value == pytest.approx(rows[-1][key], rel=1e-6), tag
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/config.json", "model/model.safetensors", "model/train_args.json"} <= artifacts
    assert "model/checkpoints" not in artifacts and "model/runs" not in artifacts
    # TensorBoard hides what the killed run logged after its checkpoint: each step once.
    tensorboard = _scalars(output / tracking["tensorboard"]["log_dir"])
    assert [step for step, _ in tensorboard["train/loss"]] == [steps, 2 * steps, 3 * steps]
    assert (output / CHECKPOINT).is_file()

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # eval from another folder finds the same run
    result = vidcls.evaluate(output, motion_dataset, workers=0)
    test_metrics = client.get_run(run.info.run_id).data.metrics
    assert test_metrics["test/accuracy"] == pytest.approx(result.top1)
    assert TEST_SCALARS <= set(test_metrics)
    assert client.get_metric_history(run.info.run_id, "test/accuracy")[0].step == tracking["step"]


def _evaluation(split: str = "test") -> SimpleNamespace:
    """The fields of an `EvaluationResult` the trackers read."""
    return SimpleNamespace(split=split, top1=0.75, top5=None, mean_class_accuracy=0.7, num_videos=8)


def test_eval_adds_test_scores_at_the_run_s_last_step_or_warns_when_out_of_reach(tmp_path, caplog):
    model = tmp_path / "model"
    model.mkdir()
    (model / ARGS_FILE).write_text(json.dumps({"tracking": {"tensorboard": {"log_dir": "runs/x"}, "step": 12}}))
    assert log_test_scores(model, _evaluation("val")) is None and not (model / "runs").exists()
    assert log_test_scores(model, _evaluation()) == "TensorBoard runs/x"
    assert _scalars(model / "runs" / "x") == {
        "test/accuracy": [(12, 0.75)], "test/mean_class_accuracy": [(12, pytest.approx(0.7))], "test/videos": [(12, 8.0)],
    }
    moved = {"mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}", "run_id": "0" * 32}, "step": 12}
    (model / ARGS_FILE).write_text(json.dumps({"tracking": moved}))
    with caplog.at_level(logging.WARNING):
        assert log_test_scores(model, _evaluation()) is None
    assert "not logged" in caplog.text
