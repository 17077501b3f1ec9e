"""The embedded default, end to end: sample the synthetic dataset, train at the defaults (the recipe search), evaluate, predict.

This is what a fresh checkout runs with no hub and no data of its own. Each step is the
public API a user would call; `say` receives one line per step so the CLI can narrate.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vidcls.errors import OutputExistsError
from vidcls.evaluation.evaluate import evaluate
from vidcls.training.config import SCRATCH_PRESET
from vidcls.inference.prediction import predict
from vidcls.evaluation.report import write_report
from vidcls.inference.options import ViewOptions
from vidcls.data.synthetic import write_synthetic_dataset
from vidcls.training.config import TrainConfig
from vidcls.training.run import train

DEMO_MARKER = ".vidcls-demo"
# The default schedule with a shorter time budget: the `motion` preset learns the easy synthetic
# motions (>= 0.98 test top-1) within it on 2 CPU cores, and the whole demo takes a few minutes
# (benchmarks/speed.md); the budget for your own data is longer (`training.schedule.DEFAULT_TIME_BUDGET_MINUTES`).
DEMO_TIME_BUDGET_MINUTES = 2.5
DEMO_PER_CLASS = 60


@dataclass
class DemoResult:
    """Where the demo wrote things and what it measured."""

    workdir: str
    model_dir: str
    report_dir: str
    test_top1: float
    prediction: dict
    seconds: float


def _prepare_workdir(workdir: Path, say: Callable[[str], None]) -> None:
    """Reuse an empty folder or replace a previous demo; never touch anything else."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / DEMO_MARKER).exists():
            raise OutputExistsError(f"{workdir} is not empty and was not made by `vidcls demo`; pick another --workdir")
        say(f"replacing the previous demo run in {workdir}")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / DEMO_MARKER).write_text("made by `vidcls demo`; safe to delete\n")


def run_demo(
    workdir: str | Path = "vidcls-demo",
    *,
    seed: int = 0,
    time_budget: float = DEMO_TIME_BUDGET_MINUTES,
    per_class: int = DEMO_PER_CLASS,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run the four steps and return the figures; ``say`` narrates each step."""
    start = time.perf_counter()
    workdir = Path(workdir)
    _prepare_workdir(workdir, say)
    data, model_dir, report_dir = workdir / "data", workdir / "model", workdir / "report"

    say(f"1/4 writing the synthetic motion dataset ({per_class} clips per class, seed {seed}) to {data}")
    summary = write_synthetic_dataset(data, per_class=per_class, seed=seed)
    say(f"    {summary.num_files} clips, classes: {', '.join(summary.classes)}")

    say(f"2/4 training at the defaults for up to {time_budget:g} minutes (no flip: left/right matter) -> {model_dir}: "
        f"pretrained features where the weights are at hand, and the `{SCRATCH_PRESET}` preset from scratch")
    trained = train(TrainConfig(data=str(data), output=str(model_dir), time_budget=time_budget, seed=seed, flip=False))
    say(f"    kept {trained.search['kept']}: {trained.search['why']}")
    say(f"    best val accuracy {trained.best_val_accuracy:.3f} at epoch {trained.best_epoch} of {trained.epochs_run}")

    say(f"3/4 evaluating on the test split -> {report_dir}/report.md")
    evaluation = evaluate(model_dir, data, split="test")
    write_report(evaluation, report_dir)
    say(f"    test top-1 {evaluation.top1:.3f}, mean class accuracy {evaluation.mean_class_accuracy:.3f}")

    video = sorted((data / "test").rglob("*.avi"))[0]
    say(f"4/4 predicting {video}")
    (prediction,) = predict(model_dir, [video], ViewOptions(top_k=3))
    say("    " + json.dumps(prediction["top_k"]))
    return DemoResult(str(workdir), str(model_dir), str(report_dir), evaluation.top1, prediction, time.perf_counter() - start)
