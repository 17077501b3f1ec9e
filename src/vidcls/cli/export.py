"""`vidcls export`: write an ONNX copy of a model and check it against torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from vidcls.cli._app import app, console, console_err

ExportFormat = Literal["onnx"]


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="Trained model directory or hub id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write model.onnx and its configs to.")],
    export_format: Annotated[ExportFormat, typer.Option("--format", help="Only onnx for now.")] = "onnx",
    check: Annotated[
        Optional[list[Path]],
        typer.Option(help="A video to compare onnxruntime and torch on (repeat for more; default: random clips)."),
    ] = None,
    opset: Annotated[Optional[int], typer.Option(min=14, help="ONNX opset (default: 17).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace files in a non-empty OUTPUT.")] = False,
) -> None:
    r"""Export a model to ONNX (run by onnxruntime: pip install 'vidcls\[onnx]'); predict, eval and serve take OUTPUT."""
    from vidcls.publish.export import TOLERANCE, export_onnx  # torch loads only when a command needs it

    result = export_onnx(model, output, check or [], opset=opset, overwrite=overwrite)
    console.print(f"[green]wrote[/] {result.output} (ONNX opset {result.opset})", highlight=False, soft_wrap=True)
    source = f"{len(result.check_videos)} videos" if result.check_videos else "random uint8 clips"
    console.print(
        f"checked on {result.check_clips} clips ({source}): max |p_onnx - p_torch| "
        f"{result.max_abs_prob_diff:.2e}, top-1 agreement {result.top1_agreement:.3f}; "
        f"{result.onnx_ms_per_clip:.1f} ms/clip onnxruntime, {result.torch_ms_per_clip:.1f} ms/clip torch",
        highlight=False, soft_wrap=True,
    )
    if not result.passed:
        console_err.print(
            f"[bold red]error:[/] onnxruntime disagrees with torch beyond {TOLERANCE:g}; do not use this export",
            highlight=False,
        )
        raise typer.Exit(1)
