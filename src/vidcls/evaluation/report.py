"""Write an evaluation as a Markdown report a person reads, plus the same data as JSON.

`report.md` shows the figures, a confusion-matrix image, the worst classes, every
misclassified video with its top-3, and the files that could not be read; `report.json` is
`EvaluationResult.as_dict()`. The figure grows with the number of classes so that ~100 class
names and counts stay legible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from vidcls.publish.markdown import markdown_table, percent

if TYPE_CHECKING:  # the model card shows class tables made here: training must not import evaluation
    from vidcls.evaluation.evaluate import EvaluationResult

WORST_CLASSES = 5
CONFUSION_FILE = "confusion_matrix.png"


def write_report(result: EvaluationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write report.md, report.json and the confusion-matrix PNG into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out_dir / "report.md",
        "json": out_dir / "report.json",
        "confusion_matrix": out_dir / CONFUSION_FILE,
    }
    plot_confusion_matrix(result.confusion_matrix, result.labels, paths["confusion_matrix"])
    paths["json"].write_text(json.dumps(result.as_dict(), indent=2))
    paths["markdown"].write_text(render_markdown(result))
    return paths


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], out: Path) -> None:
    """Counts in every cell (non-zero ones only past 30 classes), class names on both axes."""
    counts = np.asarray(matrix)
    n = len(labels)
    side = max(4.0, 2.5 + n * (0.5 if n <= 10 else 0.3))  # inches: a cell stays big enough for its count
    font = 10 if n <= 10 else 7 if n <= 40 else 5
    figure = Figure(figsize=(side, side))
    axis = figure.subplots()
    axis.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
    axis.set_xticks(range(n), labels, rotation=90, fontsize=font)
    axis.set_yticks(range(n), labels, fontsize=font)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = counts.max() / 2
    for (row, column), count in np.ndenumerate(counts):
        if count or n <= 30:
            colour = "white" if count > threshold else "black"
            axis.text(column, row, str(count), ha="center", va="center", fontsize=font, color=colour)
    figure.savefig(out, dpi=100, bbox_inches="tight")


def render_markdown(result: EvaluationResult) -> str:
    """The whole report as Markdown text."""
    sections = [
        _summary(result),
        f"## Confusion matrix\n\nRows: true class; columns: predicted class.\n\n![confusion matrix]({CONFUSION_FILE})",
        _worst_classes(result),
        _per_class(result),
        _misclassified(result),
        _files("Files that could not be read", result.failed, "Left out of every figure above.", result.data),
        _files("Damaged files", result.damaged, "Scored on the frames that could be read.", result.data),
    ]
    return "\n\n".join(sections) + "\n"


def _summary(result: EvaluationResult) -> str:
    top5 = "n/a (5 classes or fewer)" if result.top5 is None else percent(result.top5)
    rows = [
        ("model", result.model),
        ("data", f"{result.data} (split {result.split}, from {result.split_source})"),
        ("videos scored", str(result.num_videos)),
        ("views per video (clips x crops)", f"{result.clips} x {result.crops}"),
        ("top-1 accuracy", percent(result.top1)),
        ("top-5 accuracy", top5),
        ("mean class accuracy", percent(result.mean_class_accuracy)),
        ("files that failed", str(len(result.failed))),
        ("damaged files (scored on their readable frames)", str(len(result.damaged))),
        ("speed", f"{result.videos_per_s:.2f} videos/s"),
    ]
    leakage = f"\n\n**Leakage**: {result.leakage}" if result.leakage else ""
    return f"# Evaluation report\n\n{markdown_table(('', 'value'), rows)}{leakage}"


def _worst_classes(result: EvaluationResult) -> str:
    scored = [label for label, s in result.per_class.items() if s["support"]]
    worst = sorted(scored, key=lambda label: (result.per_class[label]["recall"], result.per_class[label]["f1"], label))
    return f"## Worst classes (lowest recall)\n\n{class_table(result, worst[:WORST_CLASSES])}"


def _per_class(result: EvaluationResult) -> str:
    return f"## Per class\n\n{class_table(result, result.labels)}"


def class_table(result: EvaluationResult, labels: list[str]) -> str:
    """Recall, precision, F1, support and the class most often predicted instead, for ``labels``."""
    header = ("class", "recall", "precision", "F1", "videos", "most often predicted instead")
    rows = []
    for label in labels:
        s = result.per_class[label]
        rows.append((
            label, percent(s["recall"]), percent(s["precision"]), f"{s['f1']:.3f}", s["support"],
            _most_confused_with(result, label),
        ))
    return markdown_table(header, rows)


def _most_confused_with(result: EvaluationResult, label: str) -> str:
    row = list(result.confusion_matrix[result.labels.index(label)])
    row[result.labels.index(label)] = 0
    if not any(row):
        return "-"
    column = int(np.argmax(row))
    return f"{result.labels[column]} ({row[column]})"


def _misclassified(result: EvaluationResult) -> str:
    wrong = [p for p in result.predictions if not p["correct"]]
    title = f"## Misclassified videos ({len(wrong)} of {result.num_videos})"
    if not wrong:
        return f"{title}\n\nNone."
    rows = [
        (_relative(p["path"], result.data), p["true_label"], _scores(p["top3"]))
        for p in wrong
    ]
    return f"{title}\n\n{markdown_table(('video', 'true class', 'top-3 predictions'), rows)}"


def _files(title: str, files: list[dict], note: str, root: str) -> str:
    """A section naming files with their reason (those that failed, those damaged)."""
    if not files:
        return f"## {title} (0)\n\nNone."
    rows = [(_relative(f["path"], root), f["reason"]) for f in files]
    return f"## {title} ({len(files)})\n\n{note}\n\n{markdown_table(('file', 'reason'), rows)}"


def _scores(top: list[dict]) -> str:
    return ", ".join(f"{t['label']} {t['score']:.2f}" for t in top)


def _relative(path: str, root: str) -> str:
    """Paths under the dataset folder are shown relative to it, to keep the tables narrow."""
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path
