"""Reports: Markdown + JSON + confusion matrix, also with failed files, one class, or many classes."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vidcls.evaluation.evaluate import EvaluationResult, evaluate
from vidcls.evaluation.report import write_report
from vidcls.inference.options import ViewOptions


@pytest.fixture(scope="module")
def result(trained_model, broken_dataset) -> EvaluationResult:
    return evaluate(str(trained_model), broken_dataset[0], ViewOptions(clips=1), split="val", workers=0)  # holds notes.txt


def _synthetic(labels: list[str], videos_per_class: int = 2) -> EvaluationResult:
    """A result for ``labels`` where every class is right once and confused with the next one otherwise."""
    n = len(labels)
    matrix = [[0] * n for _ in range(n)]
    predictions = []
    for i, label in enumerate(labels):
        matrix[i][i] += 1
        matrix[i][(i + 1) % n] += videos_per_class - 1
        wrong = labels[(i + 1) % n]
        predictions.append({"path": f"/data/{label}/a.mp4", "true_label": label, "correct": wrong == label,
                            "top3": [{"label": wrong, "score": 0.6}, {"label": label, "score": 0.4}]})
    per_class = {label: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": videos_per_class} for label in labels}
    return EvaluationResult(
        model="m", data="/data", split="test", labels=labels, num_videos=n * videos_per_class, clips=1, crops=1,
        top1=sum(matrix[i][i] for i in range(n)) / (n * videos_per_class), top5=None, mean_class_accuracy=0.5,
        per_class=per_class, confusion_matrix=matrix, failed=[{"path": "/data/x/bad.mp4", "reason": "empty file"}],
        damaged=[{"path": "/data/x/cut.avi", "reason": "the header claims 69 frames, 13 can be read"}],
        split_source="seed 3", videos_per_s=10.0, predictions=predictions, spec={},
    )


def test_report_files_and_sections(result, tmp_path):
    paths = write_report(result, tmp_path / "report")
    markdown = paths["markdown"].read_text()
    for heading in ("# Evaluation report", "## Confusion matrix", "## Worst classes", "## Misclassified videos",
                    "## Files that could not be read (1)"):
        assert heading in markdown
    assert "val/MoveUp/notes.txt" in markdown and "not a video file" in markdown
    assert "(confusion_matrix.png)" in markdown
    assert json.loads(paths["json"].read_text())["num_videos"] == result.num_videos
    assert Image.open(paths["confusion_matrix"]).size[0] > 100


def test_report_renders_for_one_class(tmp_path):
    one = _synthetic(["Only"], videos_per_class=1)
    markdown = write_report(one, tmp_path)["markdown"].read_text()
    assert "Misclassified videos (0 of 1)" in markdown and "| Only |" in markdown


def test_report_names_damaged_files_and_where_the_split_came_from(tmp_path):
    markdown = write_report(_synthetic(["a", "b"]), tmp_path)["markdown"].read_text()
    assert "## Damaged files (1)" in markdown and "| x/cut.avi | the header claims 69 frames" in markdown
    assert "/data (split test, from seed 3)" in markdown


def test_confusion_matrix_grows_with_the_classes(tmp_path):
    few = Image.open(write_report(_synthetic(["a", "b"]), tmp_path / "few")["confusion_matrix"]).size
    many = Image.open(write_report(_synthetic([f"class_{i}" for i in range(60)]), tmp_path / "many")["confusion_matrix"]).size
    assert many[0] > 3 * few[0]
