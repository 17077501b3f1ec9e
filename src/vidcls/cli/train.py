"""`vidcls train`: fine-tune or train from scratch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from vidcls.cli._app import DeviceOption, LeakageCheckOption, app, console
from vidcls.cli.data import render_bad_files
from vidcls.data.sampling import Sampling
from vidcls.training.config import TrainConfig


def _option(name: str, *names: str, **limits) -> typer.models.OptionInfo:
    """The option of a `TrainConfig` setting, with the help text written there."""
    return typer.Option(*names, help=TrainConfig.help(name), **limits)


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help=TrainConfig.help("data"))],
    output: Annotated[Path, _option("output", "--output", "-o")],
    model: Annotated[Optional[str], _option("model")] = TrainConfig.model,
    epochs: Annotated[Optional[int], _option("epochs", min=1)] = TrainConfig.epochs,
    steps: Annotated[Optional[int], _option("steps", min=1)] = TrainConfig.steps,
    time_budget: Annotated[Optional[float], _option("time_budget", min=0)] = TrainConfig.time_budget,
    batch_size: Annotated[int, _option("batch_size", min=1)] = TrainConfig.batch_size,
    grad_accum: Annotated[int, _option("grad_accum", min=1)] = TrainConfig.grad_accum,
    lr: Annotated[Optional[float], _option("lr")] = TrainConfig.lr,
    num_frames: Annotated[Optional[int], _option("num_frames")] = TrainConfig.num_frames,
    sample_rate: Annotated[Optional[int], _option("sample_rate")] = TrainConfig.sample_rate,
    sampling: Annotated[Optional[Sampling], _option("sampling")] = TrainConfig.sampling,
    label_smoothing: Annotated[float, _option("label_smoothing", min=0, max=0.9)] = TrainConfig.label_smoothing,
    clips_per_video: Annotated[int, _option("clips_per_video", min=1)] = TrainConfig.clips_per_video,
    workers: Annotated[Optional[int], _option("workers")] = TrainConfig.workers,
    seed: Annotated[int, _option("seed")] = TrainConfig.seed,
    flip: Annotated[bool, _option("flip")] = TrainConfig.flip,
    freeze_backbone: Annotated[bool, _option("freeze_backbone")] = TrainConfig.freeze_backbone,
    early_stopping: Annotated[Optional[int], _option("early_stopping")] = TrainConfig.early_stopping,
    resume: Annotated[bool, _option("resume")] = TrainConfig.resume,
    overwrite: Annotated[bool, _option("overwrite")] = TrainConfig.overwrite,
    report_to: Annotated[str, _option("report_to")] = TrainConfig.report_to,
    device: DeviceOption = TrainConfig.device,
    leakage_check: LeakageCheckOption = "on",
) -> None:
    """Train a video classifier; OUTPUT ends as a transformers model directory."""
    from vidcls.training.run import train as run_training  # torch loads only when a command needs it

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = TrainConfig(
        data=str(data), output=str(output), model=model, epochs=epochs, steps=steps, time_budget=time_budget,
        batch_size=batch_size, grad_accum=grad_accum, lr=lr,
        num_frames=num_frames, sample_rate=sample_rate, sampling=sampling, label_smoothing=label_smoothing,
        clips_per_video=clips_per_video, workers=workers, seed=seed, flip=flip,
        early_stopping=early_stopping, freeze_backbone=freeze_backbone, resume=resume, overwrite=overwrite, device=device,
        report_to=report_to, leakage_check=leakage_check == "on",
    )
    result = run_training(config)
    if not result.is_main_process:  # under torchrun the main process reports for all
        return
    render_bad_files(result.bad_files)
    accuracy = "n/a (no val split)" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.3f}"
    if result.search:
        console.print(f"kept {result.search['kept']}: {result.search['why']}", highlight=False)
    console.print(
        f"[green]saved[/] {result.output} (best epoch {result.best_epoch}, val accuracy {accuracy})", highlight=False
    )
