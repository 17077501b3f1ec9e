"""`vidcls preview`: a GIF of the frames a model sees for one video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vidcls.cli._app import DeviceOption, SamplingOption, app, console
from vidcls.data.clip_spec import ClipSpec


@app.command()
def preview(
    video: Annotated[Path, typer.Argument(help="Video file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="GIF file to write.")],
    model: Annotated[
        Optional[str], typer.Option(help="Model directory: its frame settings, and its prediction as a caption.")
    ] = None,
    num_frames: Annotated[
        Optional[int], typer.Option(min=1, help=f"Frames per clip (default: the model's, else {ClipSpec.num_frames}).")
    ] = None,
    sample_rate: Annotated[
        Optional[int], typer.Option(min=1, help=f"Take every n-th frame (default: the model's, else {ClipSpec.sample_rate}).")
    ] = None,
    size: Annotated[
        Optional[int], typer.Option(min=8, help=f"Crop size in pixels (default: the model's, else {ClipSpec.crop_size}).")
    ] = None,
    clips: Annotated[int, typer.Option(min=1, help="Clips spread over the video, shown one after another.")] = 1,
    sampling: SamplingOption = None,
    device: DeviceOption = None,
) -> None:
    """Write a GIF of exactly the frames the model takes as input, captioned with its prediction."""
    from vidcls.inference.preview import write_preview  # torch loads only when a command needs it

    shown = write_preview(
        video, out, model=model, num_frames=num_frames, sample_rate=sample_rate, size=size, clips=clips,
        sampling=sampling, device=device,
    )
    top = shown["prediction"]
    caption = f", predicted {top['label']} ({top['score']:.3f})" if top else ""
    frames = f"{shown['num_frames']} frames (video frames {shown['frame_indices']})"
    console.print(f"[green]wrote[/] {shown['gif']}: {frames}{caption}", highlight=False, soft_wrap=True)
