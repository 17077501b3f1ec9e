"""`vidcls data`: what vidcls finds in a dataset folder."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from vidcls.cli._app import LeakageCheckOption, app, console, console_err
from vidcls.cli.audit import warn_leakage
from vidcls.data.discovery import TEST_RATIO, VAL_RATIO, BadFile, DatasetIndex, discover_dataset


def render_bad_files(bad_files: list[BadFile], leaked_groups: list[str] = (), damaged: list[BadFile] = ()) -> None:
    """Name every file left out and every damaged one, with its reason, and every group found in two splits, on stderr."""
    for bad in bad_files:
        console_err.print(f"[yellow]skipped[/] {bad.path}: {bad.reason}", highlight=False)
    for bad in damaged:
        console_err.print(f"[yellow]damaged[/] {bad.path}: {bad.reason}", highlight=False)
    for group in leaked_groups:
        console_err.print(f"[yellow]warning[/] group {group} has clips in more than one split", highlight=False)


def _split_table(index: DatasetIndex, split: str) -> Table:
    table = Table(title=f"{split}", title_justify="left")
    for column in ("class", "videos", "duration (s)", "fps", "resolution"):
        table.add_column(column, justify="left" if column in ("class", "resolution") else "right")
    by_class = defaultdict(list)
    for record in index.splits[split]:
        by_class[record.label].append(record.info)
    for label in index.labels:
        infos = by_class.get(label, [])
        if not infos:
            table.add_row(label, "0", "-", "-", "-")
            continue
        durations = [info.duration for info in infos]
        fps = sorted({round(info.fps, 2) for info in infos})
        sizes = sorted({f"{info.width}x{info.height}" for info in infos})
        table.add_row(
            label, str(len(infos)), f"{sum(durations):.1f} ({min(durations):.1f}-{max(durations):.1f})",
            ", ".join(f"{f:g}" for f in fps[:3]) + (" ..." if len(fps) > 3 else ""),
            ", ".join(sizes[:3]) + (" ..." if len(sizes) > 3 else ""),
        )
    return table


@app.command()
def data(
    root: Annotated[Path, typer.Argument(help="Dataset folder: train/val/test/<Class>/ or <Class>/ (flat).")],
    val_ratio: Annotated[float, typer.Option(help="Flat layout: share of groups for validation.")] = VAL_RATIO,
    test_ratio: Annotated[float, typer.Option(help="Flat layout: share of groups for test.")] = TEST_RATIO,
    seed: Annotated[int, typer.Option(help="Flat layout: seed of the group split.")] = 0,
    model: Annotated[
        Optional[Path], typer.Option(help="Model directory: show the split it was trained with (as `vidcls eval` uses).")
    ] = None,
    leakage_check: LeakageCheckOption = "on",
) -> None:
    """Show the classes, splits and videos vidcls finds in a dataset folder."""
    index = discover_dataset(root, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed, model_dir=model, decode_all=True)
    console.print(
        f"[bold]{index.root}[/] ({index.layout} layout, {len(index.labels)} classes, split from {index.split_source})",
        highlight=False, soft_wrap=True,
    )
    for split in index.splits:
        if index.splits[split]:
            console.print(_split_table(index, split))
    render_bad_files(index.bad_files, index.leaked_groups, index.damaged)
    if leakage_check == "on":
        warn_leakage(index)
