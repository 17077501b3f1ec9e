"""`vidcls sample`: write the synthetic motion dataset, to try vidcls without real videos."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from vidcls.cli._app import app, console

if TYPE_CHECKING:
    from vidcls.data.synthetic import SyntheticDatasetSummary


@app.command()
def sample(
    out: Annotated[Path, typer.Argument(help="Folder to write the dataset to (must be empty or absent).")],
    per_class: Annotated[int, typer.Option(help="Clips per class (at least 12 for the split layout).")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same videos.")] = 0,
    layout: Annotated[
        Literal["split", "flat"],
        typer.Option(help="split: out/{train,val,test}/<Class>/, split by group; flat: out/<Class>/."),
    ] = "split",
    video_format: Annotated[
        Literal["avi", "mp4"],
        typer.Option("--format", help="avi: MPEG-4 Part 2 in AVI, as UCF101 ships; mp4: H.264."),
    ] = "avi",
    difficulty: Annotated[
        Literal["easy", "hard"],
        typer.Option(help="easy: one large shape, plain background; hard: small shape, clutter, distractors."),
    ] = "easy",
    overwrite: Annotated[
        bool, typer.Option(help="Replace a previous synthetic dataset in OUT (nothing else is ever deleted).")
    ] = False,
) -> None:
    """Write a small synthetic video dataset whose classes differ only in motion."""
    from vidcls.data.synthetic import write_synthetic_dataset  # the encoder loads only when this command runs

    started = time.perf_counter()
    with console.status(f"Writing synthetic videos to {out}..."):
        summary = write_synthetic_dataset(
            out,
            per_class=per_class,
            seed=seed,
            layout=layout,
            video_format=video_format,
            difficulty=difficulty,
            overwrite=overwrite,
        )
    console.print(_counts_table(summary))
    elapsed = time.perf_counter() - started
    console.print(f"Wrote {summary.num_files} videos to [bold]{summary.root}[/] in {elapsed:.1f} s.")


def _counts_table(summary: SyntheticDatasetSummary) -> Table:
    """Clips per class (rows) and split (columns), with totals."""
    splits = list(summary.counts)
    table = Table(title=f"Synthetic dataset ({summary.layout} layout)")
    table.add_column("class")
    for split in splits:
        table.add_column(split, justify="right")
    if len(splits) > 1:
        table.add_column("total", justify="right")
    for label in summary.classes:
        row = [summary.counts[split].get(label, 0) for split in splits]
        table.add_row(label, *map(str, row), *([str(sum(row))] if len(splits) > 1 else []))
    return table
