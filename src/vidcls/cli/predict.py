"""`vidcls predict`: classify video files and folders; a table, or JSON lines with --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from vidcls.cli._app import DeviceOption, SamplingOption, app, console, console_err
from vidcls.sampling import DEFAULT_CLIPS


def _results_table(results: list[dict]) -> Table:
    table = Table()
    table.add_column("video", overflow="fold")
    table.add_column("duration (s)", justify="right")
    table.add_column("prediction")
    table.add_column("score", justify="right")
    table.add_column("next best")
    for result in results:
        best, *others = result["top_k"]
        table.add_row(
            result["path"], f"{result['duration']:.1f}", best["label"], f"{best['score']:.3f}",
            ", ".join(f"{t['label']} {t['score']:.2f}" for t in others),
        )
    return table


def _timeline_table(result: dict) -> Table:
    table = Table(title=result["path"], title_justify="left")
    for column in ("from (s)", "to (s)", "prediction", "score"):
        table.add_column(column, justify="left" if column == "prediction" else "right")
    for window in result["windows"]:
        best = window["top_k"][0]
        table.add_row(f"{window['start']:.1f}", f"{window['end']:.1f}", best["label"], f"{best['score']:.3f}")
    return table


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Trained model directory or hub id.")],
    paths: Annotated[list[Path], typer.Argument(help="Video files, or folders searched recursively for videos.")],
    top_k: Annotated[int, typer.Option(min=1, help="Labels per video.")] = 5,
    clips: Annotated[int, typer.Option(min=1, help="Clips spread over each video, scores averaged.")] = DEFAULT_CLIPS,
    window: Annotated[
        Optional[float], typer.Option(min=0.01, help="Also classify every WINDOW seconds (a timeline).")
    ] = None,
    crops: Annotated[int, typer.Option(min=1, max=3, help="1 centre crop, or 3 crops along the long side.")] = 1,
    sampling: SamplingOption = None,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per video on stdout.")] = False,
    batch_size: Annotated[
        Optional[int], typer.Option(min=1, help="Videos per forward, the next ones decoded meanwhile (default: 4).")
    ] = None,
    device: DeviceOption = None,
) -> None:
    """Classify videos; files that cannot be read are named on stderr and make the exit status 1."""
    from vidcls.prediction import iter_predict  # torch loads only when a command needs it

    results = iter_predict(
        model, paths, top_k=top_k, clips=clips, crops=crops, window=window, sampling=sampling, batch_size=batch_size,
        device=device,
    )
    predicted, failed = [], 0
    for result in results:
        if "error" in result:
            failed += 1
            console_err.print(f"[red]failed[/] {result['path']}: {result['error']}", highlight=False, soft_wrap=True)
        elif json_lines:
            typer.echo(json.dumps(result))  # as each video is done, so a pipe sees results while others run
        else:
            predicted.append(result)
    if predicted:
        console.print(_results_table(predicted))
    for result in predicted:
        if result["windows"]:
            console.print(_timeline_table(result))
    if failed:
        raise typer.Exit(1)
