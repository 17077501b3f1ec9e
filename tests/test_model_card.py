"""The model card: written by training, its test scores updated by `vidcls eval`."""

from __future__ import annotations

import shutil

import yaml
from typer.testing import CliRunner

import vidcls.cli.evaluate  # noqa: F401  (registers `eval`)
from conftest import CLASSES
from vidcls.cli._app import app
from vidcls.publish.model_card import CARD_FILE, TEST_START, base_model, licence_note, split_front_matter, training_command
from vidcls.training.loop import TrainConfig


def card_of(model_dir) -> tuple[dict, str]:
    text = (model_dir / CARD_FILE).read_text()
    assert text.startswith("---\n")
    return split_front_matter(text)


def test_training_writes_a_hub_model_card(trained_model, broken_dataset):
    front, body = card_of(trained_model)
    assert yaml.safe_load((trained_model / CARD_FILE).read_text().split("---\n")[1]) == front
    assert front["library_name"] == "transformers" and front["pipeline_tag"] == "video-classification"
    assert "vidcls" in front["tags"] and "base_model" not in front  # a preset, trained from scratch
    assert front["datasets"] == [broken_dataset[0].name] and front["metrics"] == ["accuracy"]
    (val,) = front["model-index"][0]["results"]
    assert val["dataset"]["split"] == "validation" and 0 <= val["metrics"][0]["value"] <= 1
    assert all(f"| {i} | {label} |" in body for i, label in enumerate(CLASSES))
    assert "| MoveLeft | 6 | 2 | 2 |" in body  # train / val / test videos of one class
    assert "1 unreadable files were left out" not in body and "unreadable files were left out" in body
    # The resolved settings: the learning rate training picked is part of the command.
    assert str(broken_dataset[0]) not in body and str(trained_model) not in body  # no path of this machine
    assert f"vidcls train {broken_dataset[0].name} --output {trained_model.name} --model tiny --epochs 3 --batch-size 4 " \
           "--lr 0.001 --workers 0 --no-flip" in body
    assert 'pipeline("video-classification", model=' in body and "frame_sampling_rate" not in body
    assert "| frames per clip | 8 |" in body and "segment sampling" in body
    assert "Not measured yet" in body and "random initialisation" in body


def test_eval_on_the_test_split_updates_the_card_test_scores(trained_model, broken_dataset, tmp_path):
    model = shutil.copytree(trained_model, tmp_path / "model")
    for _ in range(2):  # a second evaluation replaces the first
        result = CliRunner().invoke(app, ["eval", str(model), str(broken_dataset[0]), "--workers", "0", "--clips", "2"])
        assert result.exit_code == 0, result.output
    assert "updated the test scores" in " ".join(result.stdout.split())
    front, body = card_of(model)
    splits = [r["dataset"]["split"] for r in front["model-index"][0]["results"]]
    assert splits == ["validation", "test"]
    assert front["model-index"][0]["results"][1]["metrics"][0]["name"] == "test top-1 (2 clips x 1 crops)"
    assert "Not measured yet" not in body and body.count(TEST_START) == 1
    assert "| views per video | 2 clips spread over the video x 1 crops |" in body
    assert all(f"| {label} |" in body.split(TEST_START)[1] for label in CLASSES)  # per-class table
    assert body.index("## Test scores") < body.index("## Frames the model sees")


def test_eval_on_another_split_leaves_the_card_alone(trained_model, broken_dataset, tmp_path):
    model = shutil.copytree(trained_model, tmp_path / "model")
    before = (model / CARD_FILE).read_text()
    result = CliRunner().invoke(app, ["eval", str(model), str(broken_dataset[0]), "--split", "val", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert (model / CARD_FILE).read_text() == before


def test_training_command_reproduces_the_run():
    config = TrainConfig(data="data", output="runs/x", model="MCG-NJU/videomae-base", epochs=5, flip=False, resume=True)
    assert training_command(config) == "vidcls train data --output runs/x --model MCG-NJU/videomae-base --epochs 5 --no-flip"
    assert training_command(config, world_size=2).startswith("torchrun --standalone --nproc-per-node 2 -m vidcls train data ")
    config = TrainConfig(data="my data", output="out", val_ratio=0.2)
    assert training_command(config) == "import vidcls\n\nvidcls.train('my data', 'out', val_ratio=0.2)"


def test_a_run_on_several_machines_is_reproduced_with_torchrun_per_machine(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun sets it: processes on this machine
    command = training_command(TrainConfig(data="data", output="m"), world_size=8)
    assert command.startswith("torchrun --nnodes 2 --nproc-per-node 4 -m vidcls train data --output m")


def test_base_model_and_licence_follow_where_the_weights_came_from(trained_model):
    assert base_model("tiny") is None and base_model(str(trained_model)) is None
    assert base_model("MCG-NJU/videomae-base") == "MCG-NJU/videomae-base"
    assert "CC BY-NC 4.0" in licence_note("MCG-NJU/videomae-base")
    assert "local model" in licence_note(str(trained_model))
