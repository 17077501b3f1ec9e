"""`vidcls predict`: classify video files and folders; a table, or JSON lines with --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from vidcls.cli._app import (
    DeviceOption, EngineOption, ModelCopiesOption, RayAddressOption, SamplingOption, app, console, console_err,
)
from vidcls.defaults import PREDICT_BATCH_SIZE, RAY_PART_SIZE, RAY_SCORE_BATCH, TOP_K
from vidcls.data.sampling import DEFAULT_CLIPS
from vidcls.inference.options import ViewOptions


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
    paths: Annotated[
        Optional[list[Path]], typer.Argument(help="Video files, or folders searched recursively for videos.")
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Labels per video.")] = TOP_K,
    clips: Annotated[Optional[int], typer.Option(
        min=1, help=f"Clips spread over each video, scores averaged (default: the model's, {DEFAULT_CLIPS} unless it says).",
    )] = None,
    window: Annotated[
        Optional[float], typer.Option(min=0.01, help="Also classify every WINDOW seconds (a timeline).")
    ] = None,
    crops: Annotated[int, typer.Option(min=1, max=3, help="1 centre crop, or 3 crops along the long side.")] = 1,
    sampling: SamplingOption = None,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per video on stdout.")] = False,
    batch_size: Annotated[
        Optional[int],
        typer.Option(min=1, help=f"At most this many videos per forward: those decoded by then, the next ones decoded meanwhile (default: {PREDICT_BATCH_SIZE}; "
                     f"{RAY_SCORE_BATCH} with --engine ray)."),
    ] = None,
    device: DeviceOption = None,
    engine: EngineOption = "local",
    manifest: Annotated[
        Optional[str], typer.Option(help="With --engine ray: a glob ('videos/**/*.mp4', 's3://b/v/*.mp4') or a text file of paths.")
    ] = None,
    output: Annotated[
        Optional[str], typer.Option(help="With --engine ray: a folder of Parquet parts (one table for pandas); a rerun skips paths in it.")
    ] = None,
    model_copies: ModelCopiesOption = None,
    part_size: Annotated[int, typer.Option(min=1, help="With --engine ray: rows per Parquet part (what a kill can lose).")] = RAY_PART_SIZE,
    ray_address: RayAddressOption = None,
) -> None:
    """Classify videos; files that cannot be read are named on stderr and make the exit status 1.
    With --engine ray, a manifest's files go to Parquet rows, unreadable ones with the reason."""
    options = ViewOptions(clips=clips, crops=crops, window=window, sampling=sampling, top_k=top_k)
    if engine == "ray":
        return _predict_on_ray(
            model, paths, manifest, output, options,
            model_copies=model_copies, part_size=part_size, batch_size=batch_size, device=device, address=ray_address,
        )
    if not paths or manifest or output:
        raise typer.BadParameter("give video files or folders; --manifest and --output go with --engine ray")
    from vidcls.inference.prediction import iter_predict  # torch loads only when a command needs it

    results = iter_predict(model, paths, options, batch_size=batch_size, device=device)
    predicted, failed = [], 0
    for result in results:
        if "error" in result:
            failed += 1
            console_err.print(f"[red]failed[/] {result['path']}: {result['error']}", highlight=False, soft_wrap=True)
        elif json_lines:
            _warn(result)
            typer.echo(json.dumps(result))  # as each video is done, so a pipe sees results while others run
        else:
            _warn(result)
            predicted.append(result)
    if predicted:
        console.print(_results_table(predicted))
    for result in predicted:
        if result["windows"]:
            console.print(_timeline_table(result))
    if failed:
        raise typer.Exit(1)


def _warn(result: dict) -> None:
    """Name on stderr what a classified file's result warns about (damage)."""
    for warning in result["warnings"]:
        console_err.print(f"[yellow]warning[/] {result['path']}: {warning}", highlight=False, soft_wrap=True)


def _predict_on_ray(
    model: str, paths: list[Path] | None, manifest: str | None, output: str | None, options: ViewOptions, **engine,
) -> None:
    if paths or not manifest or not output:
        raise typer.BadParameter("--engine ray reads --manifest (a glob or a text file of paths) and writes --output, not PATHS")
    from vidcls.inference.ray_engine import predict_to_parquet

    summary = predict_to_parquet(model, manifest, output, options, **engine)
    console.print(
        f"{summary.total} files: {summary.skipped} already in {output}, {summary.written} written "
        f"({summary.failed} unreadable, reason in the error column) in {summary.seconds:.1f} s "
        f"({summary.videos_per_s:.2f} videos/s)", highlight=False, soft_wrap=True,
    )
