"""`vidcls demo`: the main job on the embedded default, narrated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidcls.cli._app import app, console


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the dataset, model and report go.")] = Path("vidcls-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the dataset and the training run.")] = 0,
) -> None:
    """Sample the synthetic dataset, train the default preset on it, evaluate on test and predict one file."""
    import logging

    from vidcls.demo import run_demo  # torch loads only when a command needs it

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    result = run_demo(workdir, seed=seed, say=lambda line: console.print(line, highlight=False))
    console.print(
        f"[bold green]done[/] in {result.seconds / 60:.1f} min: test top-1 {result.test_top1:.3f}; "
        f"model in {result.model_dir}, report in {result.report_dir}/report.md",
        highlight=False,
    )
