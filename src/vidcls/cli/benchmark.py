"""`vidcls benchmark`: loader, training-step and prediction speed, against the guide and transformers' pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from vidcls.cli._app import DeviceOption, WorkersOption, app, console_err


def _prediction_table(result: dict) -> Table:
    load = result["load_average"]
    title = (f"prediction, {result['settings']['videos']} videos, {result['settings']['torch_threads']} torch threads "
             f"(load {load['before'][0]:.1f} -> {load['after'][0]:.1f})")
    table = Table(title=title, title_justify="left")
    for column in ("way", "ms/video", "CPU ms/video", "x pipeline", "top-1 agree"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for name, row in result["prediction"].items():
        table.add_row(name, f"{row['ms_per_video']:.2f}", f"{row['cpu_ms_per_video']:.2f}",
                      f"{row['speedup_vs_pipeline']:.2f}", f"{row['top1_agree']:.3f}")
    return table


def _targets_table(result: dict) -> Table:
    table = Table(title="targets", title_justify="left")
    for column in ("figure", "value", "target", "result"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for name, target in result["targets"].items():
        verdict = "[green]pass[/]" if target["pass"] else "[red]fail[/]"
        table.add_row(name, f"{target['value']:.3g}", target["target"], verdict)
    return table


@app.command()
def benchmark(
    data: Annotated[Path, typer.Argument(help="Dataset folder, e.g. from `vidcls sample --per-class 12`.")],
    model: Annotated[str, typer.Option(help="Preset (motion, tiny, base, ...), local model directory or hub id.")] = "tiny",
    videos: Annotated[int, typer.Option(min=1, help="Files used by every measurement.")] = 48,
    batches: Annotated[int, typer.Option(min=1, help="Measured batches for the loader and the training step.")] = 30,
    warmup_batches: Annotated[int, typer.Option(min=0, help="Batches run first and not counted.")] = 2,
    workers: WorkersOption = None,
    device: DeviceOption = None,
    threads: Annotated[
        Optional[int], typer.Option(min=1, help="Torch threads (default: torch's); 1 on a machine other jobs share.")
    ] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the full result to this file.")] = None,
    measure: Annotated[
        Optional[list[str]],
        typer.Option(help="What to measure, repeatable: loader, train, predict, eval (the test split at the model's "
                          "default views). Default: loader, train, predict."),
    ] = None,
) -> None:
    """Measure loader clips/s, training data wait and predict (torch, onnxruntime) vs transformers' pipeline; JSON on stdout."""
    from vidcls.benchmarking import checked_measurements, run_benchmark  # torch loads only when needed

    try:
        measure = checked_measurements(measure or None)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--measure") from error
    with console_err.status("Benchmarking (a few minutes)..."):
        result = run_benchmark(
            data, model, videos=videos, batches=batches, warmup_batches=warmup_batches, workers=workers,
            device=device, threads=threads, measure=measure,
        )
    text = json.dumps(result, indent=2)
    if json_out:
        json_out.write_text(text + "\n")
    typer.echo(text)
    if "prediction" in result:  # stderr: stdout stays pure JSON
        console_err.print(_prediction_table(result))
    console_err.print(_targets_table(result))
