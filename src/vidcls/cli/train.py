"""`vidcls train`: fine-tune or train from scratch."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from vidcls.cli._app import DeviceOption, LeakageCheckOption, WorkersOption, app, console
from vidcls.cli.audit import warn_leakage
from vidcls.cli.data import render_bad_files
from vidcls.sampling import Sampling
from vidcls.schedule import DEFAULT_TIME_BUDGET_MINUTES


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Dataset folder (split or flat layout).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    model: Annotated[
        str, typer.Option(help="Preset (motion: a small motion CNN; tiny, base: VideoMAE), pretrained model (i3d-kinetics400: "
                     "Kinetics-400 I3D), local model directory or hub id.")
    ] = "motion",
    epochs: Annotated[
        Optional[int], typer.Option(min=1, help="An exact schedule of N epochs (default: 10 to fine-tune; from scratch, "
                                    "enough for 3,000 optimizer steps, ended sooner by --time-budget or a validation plateau).")
    ] = None,
    steps: Annotated[
        Optional[int], typer.Option(min=1, help="An exact schedule of N optimizer steps, rounded up to whole epochs.")
    ] = None,
    time_budget: Annotated[
        Optional[float], typer.Option(min=0, help="Minutes the default schedule ends within, at the speed measured "
                                      f"in its first epochs (default: {DEFAULT_TIME_BUDGET_MINUTES:g}; 0: none). Not with --epochs or --steps.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Clips per optimizer step, over all processes (torchrun) and --grad-accum micro-batches.")
    ] = 8,
    grad_accum: Annotated[
        int, typer.Option(min=1, help="Split each step's batch into N micro-batches (less memory, same step).")
    ] = 1,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default: 1e-3 for presets, 5e-5 to fine-tune).")] = None,
    num_frames: Annotated[Optional[int], typer.Option(help="Frames per clip (default: the model's).")] = None,
    sample_rate: Annotated[Optional[int], typer.Option(help="Dense sampling: take every n-th frame (default: 4).")] = None,
    sampling: Annotated[
        Optional[Sampling],
        typer.Option(help="segment (default): one frame per equal part of the video, as transformers.pipeline reads; "
                     "dense: a run of frames every --sample-rate."),
    ] = None,
    label_smoothing: Annotated[float, typer.Option(min=0, max=0.9, help="Label smoothing of the loss.")] = 0.1,
    clips_per_video: Annotated[
        int, typer.Option(min=1, help="Random clips of each video per epoch, decoded in one pass, side by side in a batch.")
    ] = 1,
    workers: WorkersOption = None,
    seed: int = 0,
    flip: Annotated[bool, typer.Option(help="Random horizontal flip (turn off when left/right matters).")] = True,
    freeze_backbone: Annotated[
        bool, typer.Option(help="Pretrained models (i3d-kinetics400): train the new head only, on clip features computed once.")
    ] = False,
    early_stopping: Annotated[Optional[int], typer.Option(help="Stop after N epochs without better val accuracy.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in OUTPUT from its last checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a previous run in OUTPUT.")] = False,
    device: DeviceOption = None,
    leakage_check: LeakageCheckOption = "on",
) -> None:
    """Train a video classifier; OUTPUT ends as a transformers model directory."""
    from vidcls.training import TrainConfig, train as run_training  # torch loads only when a command needs it

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if leakage_check == "on" and not resume and os.environ.get("RANK", "0") == "0":  # torchrun: its first process only
        from vidcls.layout import discover_dataset

        warn_leakage(discover_dataset(data, seed=seed))
    config = TrainConfig(
        data=str(data), output=str(output), model=model, epochs=epochs, steps=steps, time_budget=time_budget,
        batch_size=batch_size, grad_accum=grad_accum, lr=lr,
        num_frames=num_frames, sample_rate=sample_rate, sampling=sampling, label_smoothing=label_smoothing,
        clips_per_video=clips_per_video, workers=workers, seed=seed, flip=flip,
        early_stopping=early_stopping, freeze_backbone=freeze_backbone, resume=resume, overwrite=overwrite, device=device,
    )
    result = run_training(config)
    if not result.is_main_process:  # under torchrun the main process reports for all
        return
    render_bad_files(result.bad_files)
    accuracy = "n/a (no val split)" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.3f}"
    console.print(
        f"[green]saved[/] {result.output} (best epoch {result.best_epoch}, val accuracy {accuracy})", highlight=False
    )
