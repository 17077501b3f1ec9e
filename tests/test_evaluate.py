"""Evaluation: metrics that agree with each other and with scikit-learn, failures named, classes matched by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import vidcls.cli.data  # noqa: F401  (registers `data`)
import vidcls.cli.evaluate  # noqa: F401  (registers `eval`)
import vidcls.evaluation.evaluate
from conftest import CLASSES
from videos import moving_square, write_video
from vidcls.cli._app import app
from vidcls.errors import DatasetError, ModelError
from vidcls.evaluation.evaluate import classification_metrics, evaluate
from vidcls.data.discovery import SPLIT_FILE, discover_dataset, group_of
from vidcls.models.loading import load_model
from vidcls.training.loop import TrainConfig
from vidcls.training.run import train
from vidcls.inference.options import ViewOptions

RESULT_KEYS = {
    "top1", "top5", "mean_class_accuracy", "per_class", "confusion_matrix", "labels", "num_videos", "clips",
    "crops", "failed", "videos_per_s", "predictions",
}


@pytest.fixture(scope="module")
def loaded(trained_model):
    return load_model(str(trained_model))


@pytest.fixture(scope="module")
def train_result(loaded, broken_dataset):
    """The train split: it holds the truncated and the empty file."""
    return evaluate(loaded, broken_dataset[0], split="train", workers=0)


def test_result_schema_and_consistent_figures(train_result):
    result = train_result.as_dict()
    assert RESULT_KEYS <= set(result)
    json.dumps(result)  # plain data throughout
    matrix = np.array(result["confusion_matrix"])
    assert result["labels"] == sorted(CLASSES) and matrix.shape == (3, 3)
    assert matrix.sum() == result["num_videos"] == len(result["predictions"]) == 18
    assert result["top1"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert result["top5"] is None  # 3 classes
    assert set(result["per_class"]) == set(CLASSES)
    assert all(set(s) == {"precision", "recall", "f1", "support"} for s in result["per_class"].values())
    assert [s["support"] for s in result["per_class"].values()] == matrix.sum(1).tolist()
    prediction = result["predictions"][0]
    assert set(prediction) >= {"path", "true_label", "top3"} and len(prediction["top3"]) == 3


def test_unreadable_files_of_the_split_are_named(train_result, broken_dataset):
    root, bad = broken_dataset
    failed = {Path(f["path"]): f["reason"] for f in train_result.failed}
    assert set(failed) == {p for p in bad if "train" in p.parts}  # the val split's text file is not this split's
    assert all(failed.values())


def test_a_file_that_fails_while_evaluating_is_named_and_the_run_finishes(loaded, broken_dataset, monkeypatch):
    moved = []

    def discover_then_move_one_away(root, **options):
        index = discover_dataset(root, **options)
        gone = index.splits["val"][0].path
        moved.append((gone, shutil.move(gone, gone.with_suffix(".moved"))))
        return index

    monkeypatch.setattr(vidcls.evaluation.evaluate, "discover_dataset", discover_then_move_one_away)
    try:
        result = evaluate(loaded, broken_dataset[0], split="val", workers=0)
    finally:
        for gone, now in moved:
            shutil.move(now, gone)
    assert result.num_videos == 5
    assert str(moved[0][0]) in {f["path"] for f in result.failed}


def test_more_clips_than_fit_and_three_crops(loaded, broken_dataset, tmp_path):
    video = next((broken_dataset[0] / "test" / "MoveUp").glob("*.avi"))  # 40 frames; 8 clips of 32 overlap
    (tmp_path / "train" / "MoveUp").mkdir(parents=True)
    shutil.copy(video, tmp_path / "train" / "MoveUp")
    result = evaluate(loaded, tmp_path, ViewOptions(clips=8, crops=3), split="train", workers=0)
    assert result.num_videos == 1 and (result.clips, result.crops) == (8, 3)
    from vidcls.inference.prediction import VideoClassifier

    alone = VideoClassifier(loaded).predict(video, ViewOptions(clips=8, crops=3, top_k=3)).top_k  # the same 24 views
    ours = result.predictions[0]["top3"]
    assert [t["label"] for t in ours] == [t["label"] for t in alone]
    assert [t["score"] for t in ours] == pytest.approx([t["score"] for t in alone], abs=1e-5)


def test_sampling_can_be_overridden(loaded, broken_dataset):
    dense = evaluate(loaded, broken_dataset[0], ViewOptions(clips=1, sampling="dense"), workers=0)
    segment = evaluate(loaded, broken_dataset[0], ViewOptions(clips=1), workers=0)
    assert dense.spec["sampling"] == "dense" and segment.spec["sampling"] == loaded.spec.sampling == "segment"
    assert [p["top3"] for p in dense.predictions] != [p["top3"] for p in segment.predictions]


def test_dataset_class_unknown_to_the_model_is_refused_before_decoding(loaded, broken_dataset, tmp_path, monkeypatch):
    shutil.copytree(broken_dataset[0] / "test", tmp_path / "test")
    shutil.copytree(broken_dataset[0] / "test" / "MoveUp", tmp_path / "train" / "Jump")
    monkeypatch.setattr("vidcls.data.views.read_video", lambda *a, **k: pytest.fail("decoded before the check"))
    with pytest.raises(ModelError, match="Jump"):
        evaluate(loaded, tmp_path, split="test", workers=0)


def test_dataset_with_fewer_classes_is_matched_by_name(loaded, broken_dataset, tmp_path):
    for label in ("MoveRight", "MoveUp"):
        shutil.copytree(broken_dataset[0] / "test" / label, tmp_path / "train" / label)
    result = evaluate(loaded, tmp_path, split="train", workers=0)
    assert result.labels[:2] == ["MoveRight", "MoveUp"]
    for prediction in result.predictions:
        assert prediction["true_label"] == Path(prediction["path"]).parent.name
        assert prediction["correct"] == (prediction["top3"][0]["label"] == prediction["true_label"])
    matrix = np.array(result.confusion_matrix)
    assert matrix.sum() == 4 and matrix[:2].sum() == 4  # rows past the dataset's classes are predictions only


def test_metrics_match_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support, top_k_accuracy_score

    rng = np.random.default_rng(0)
    model_labels = [f"c{i}" for i in range(8)]
    truth = rng.integers(0, 8, 60)
    probabilities = torch.softmax(torch.randn(60, 8) + 2 * torch.nn.functional.one_hot(torch.tensor(truth), 8), -1)
    records = [SimpleNamespace(label=model_labels[t]) for t in truth]
    metrics = classification_metrics(records, probabilities, model_labels, model_labels)
    predicted = probabilities.argmax(-1).numpy()
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=range(8), zero_division=0)
    per_class = metrics["per_class"]
    assert [per_class[c]["precision"] for c in model_labels] == pytest.approx(precision)
    assert [per_class[c]["recall"] for c in model_labels] == pytest.approx(recall)
    assert [per_class[c]["f1"] for c in model_labels] == pytest.approx(f1)
    assert [per_class[c]["support"] for c in model_labels] == support.tolist()
    assert metrics["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert metrics["top5"] == pytest.approx(top_k_accuracy_score(truth, probabilities.numpy(), k=5))


def test_cli_eval_prints_figures_names_failures_and_writes_outputs(trained_model, broken_dataset, tmp_path):
    model = shutil.copytree(trained_model, tmp_path / "model")  # the CLI updates the model card: not the shared one
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, [
        "eval", str(model), str(broken_dataset[0]), "--split", "val", "--workers", "0",
        "--json", str(out), "--report", str(tmp_path / "report"),
    ])
    assert result.exit_code == 0, result.output
    stdout = " ".join(result.stdout.split())
    assert "top-1" in stdout and "mean class accuracy" in stdout
    assert all(label in stdout for label in CLASSES)
    assert "notes.txt" in result.stderr
    assert RESULT_KEYS <= set(json.loads(out.read_text()))
    assert (tmp_path / "report" / "report.md").is_file()


@pytest.mark.slow
def test_eval_of_a_flat_folder_never_scores_a_group_the_model_trained_on(tmp_path):
    root = tmp_path / "flat"
    for label in CLASSES:
        for group in range(1, 7):
            write_video(root / label / f"v_{label}_g{group:02d}_c01.avi", moving_square(label, 16, seed=group))
    model = tmp_path / "model"
    train(TrainConfig(
        data=str(root), output=str(model), model="tiny", epochs=1, batch_size=6, workers=0, flip=False,
        progress=False, seed=3,
    ))
    trained_groups = {r.group for r in discover_dataset(root, seed=3).splits["train"]}
    default = discover_dataset(root).splits
    assert {r.group for r in default["val"] + default["test"]} & trained_groups, "the default seed would leak"
    for split in ("val", "test"):
        result = evaluate(model, root, split=split, workers=0)
        scored = {group_of(Path(p["path"]), p["true_label"]) for p in result.predictions}
        assert scored and not scored & trained_groups, split
        assert result.split_source == str(model / SPLIT_FILE)
    shown = CliRunner().invoke(app, ["data", str(root), "--model", str(model)])
    assert shown.exit_code == 0 and f"split from {model / SPLIT_FILE}" in " ".join(shown.stdout.split())


def test_split_without_videos_is_named(loaded, broken_dataset, tmp_path):
    shutil.copytree(broken_dataset[0] / "test" / "MoveUp", tmp_path / "elsewhere" / "train" / "MoveUp")
    with pytest.raises(DatasetError, match="split 'val' has no readable videos .splits found: train .2.."):
        evaluate(loaded, tmp_path / "elsewhere", split="val", workers=0)
