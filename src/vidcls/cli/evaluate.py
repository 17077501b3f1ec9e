"""`vidcls eval`: score a model on a dataset split, optionally writing JSON and a Markdown report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from vidcls.cli._app import (
    DeviceOption, EngineOption, LeakageCheckOption, ModelCopiesOption, RayAddressOption, SamplingOption, WorkersOption, app,
    console, console_err,
)
from vidcls.defaults import EVAL_BATCH_SIZE
from vidcls.data.sampling import DEFAULT_CLIPS
from vidcls.inference.options import ViewOptions

if TYPE_CHECKING:
    from vidcls.evaluation.evaluate import EvaluationResult


def _summary(result: EvaluationResult) -> str:
    top5 = "n/a" if result.top5 is None else f"{result.top5:.3f}"
    return (
        f"[bold]{result.num_videos} videos[/] of split {result.split} (from {result.split_source}), "
        f"{result.clips}x{result.crops} views (clips x crops): top-1 [bold]{result.top1:.3f}[/], top-5 {top5}, "
        f"mean class accuracy {result.mean_class_accuracy:.3f} ({result.videos_per_s:.1f} videos/s)"
    )


def _per_class_table(result: EvaluationResult) -> Table:
    table = Table(title="per class", title_justify="left")
    table.add_column("class")
    for column in ("precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for label, s in result.per_class.items():
        table.add_row(label, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
    return table


def _say(text: str, to_stderr: bool = False) -> None:
    """One unwrapped line, so paths stay whole for copying."""
    (console_err if to_stderr else console).print(text, highlight=False, soft_wrap=True)


@app.command(name="eval")
def evaluate_command(
    model: Annotated[str, typer.Argument(help="Trained model directory or hub id.")],
    data: Annotated[Path, typer.Argument(help="Dataset folder (split or flat layout).")],
    split: Annotated[str, typer.Option(help="Split to score: train, val or test.")] = "test",
    clips: Annotated[
        Optional[int], typer.Option(min=1, help=f"Clips spread over each video (default: the model's, {DEFAULT_CLIPS} "
                                    "unless it says; VideoMAE: 5 on Kinetics and UCF101).")
    ] = None,
    crops: Annotated[int, typer.Option(min=1, max=3, help="1 centre crop, or 3 crops along the long side.")] = 1,
    sampling: SamplingOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Videos per forward batch.")] = EVAL_BATCH_SIZE,
    workers: WorkersOption = None,
    model_copies: ModelCopiesOption = None,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write every figure and prediction to this JSON file.")
    ] = None,
    report: Annotated[
        Optional[Path], typer.Option(help="Write report.md, report.json and the confusion matrix to this folder.")
    ] = None,
    device: DeviceOption = None,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    leakage_check: LeakageCheckOption = "on",
) -> None:
    """Evaluate a model on a dataset split: accuracy, per-class scores, confusion matrix."""
    import vidcls

    result = vidcls.evaluate(
        model, data, report=report, options=ViewOptions(clips=clips, crops=crops, sampling=sampling), split=split,
        batch_size=batch_size,
        workers=workers, model_copies=model_copies, device=device, progress=True, engine=engine, ray_address=ray_address,
        leakage_check=leakage_check == "on",
    )
    _say(_summary(result))
    console.print(_per_class_table(result))
    for failure in result.failed:
        _say(f"[yellow]failed[/] {failure['path']}: {failure['reason']}", to_stderr=True)
    for damaged in result.damaged:
        _say(f"[yellow]damaged[/] {damaged['path']}: {damaged['reason']}", to_stderr=True)
    if result.leakage:
        _say(f"[yellow]warning[/] {result.leakage}", to_stderr=True)
    if json_out:
        json_out.write_text(json.dumps(result.as_dict(), indent=2))
        _say(f"[green]wrote[/] {json_out}")
    if "report" in result.outputs:
        _say(f"[green]wrote[/] {result.outputs['report']}")
    if "model_card" in result.outputs:
        _say(f"[green]updated[/] the test scores of the model card {result.outputs['model_card']}")
    if "tracker" in result.outputs:
        _say(f"[green]logged[/] the test scores to {result.outputs['tracker']}")
