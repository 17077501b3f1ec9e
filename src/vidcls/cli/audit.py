"""`vidcls audit`: copies and shared recordings across splits, likely mislabelled videos, imbalance and outliers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional

import typer
from rich.table import Table

from vidcls.defaults import LABEL_FOLD_RECIPES, LABEL_FOLD_STEPS, LABEL_FOLDS
from vidcls.cli._app import DeviceOption, WorkersOption, app, console, console_err

if TYPE_CHECKING:
    from vidcls.audit.core import AuditResult
    from vidcls.data.discovery import DatasetIndex

SHOWN = 10  # rows per table in the terminal; the report and JSON hold all


def warn_leakage(index: DatasetIndex, split: str | None = None) -> str | None:
    """Print the cross-split copy warning for ``index`` on stderr (nothing on a clean folder); returns it.
    The cheap check only: shared recordings are `vidcls audit`'s (see `vidcls.audit.leakage`)."""
    from vidcls.audit.leakage import leakage_warning

    warning = leakage_warning(index, f"vidcls audit {index.root}", split)
    if warning:
        console_err.print(f"[yellow]warning[/] {warning}", highlight=False, soft_wrap=True)
    return warning


def _pairs_table(result: AuditResult) -> Table:
    from vidcls.audit.report import held_out_first, listed_pairs, match_kind, relative

    table = Table(title=f"pairs ({len(result.pairs)}; first {SHOWN}, cross-split copies first)", title_justify="left")
    for column in ("match", "video", "other"):
        table.add_column(column)
    for pair in listed_pairs(result)[:SHOWN]:
        a, b = held_out_first(pair, result.videos)
        table.add_row(
            match_kind(pair),
            f"{a['split']}: {relative(a['path'], result.root)}", f"{b['split']}: {relative(b['path'], result.root)}",
        )
    return table


def _issues_table(result: AuditResult) -> Table:
    from vidcls.audit.report import relative

    table = Table(title=f"likely mislabelled ({len(result.label_issues)}; first {SHOWN})", title_justify="left")
    for column in ("video", "label", "suggested", "quality"):
        table.add_column(column)
    for issue in result.label_issues[:SHOWN]:
        video = result.videos[issue["index"]]
        table.add_row(relative(video["path"], result.root), issue["given"], issue["suggested"], f"{issue['quality']:.3f}")
    return table


@app.command()
def audit(
    data: Annotated[Path, typer.Argument(help="Dataset folder (split or flat layout).")],
    model: Annotated[
        Optional[str],
        typer.Option(help="Trained model directory: its split (flat folders), its probabilities for --label-issues "
                     "instead of k-fold training, and its features with --signature embeddings."),
    ] = None,
    pretrained: Annotated[
        bool,
        typer.Option(help="Use pretrained features, where their weights are on this machine: EfficientNet-Lite0's find clips "
                     "of one recording across splits, i3d-kinetics400's are the default label-issue evidence (cached)."),
    ] = True,
    signature: Annotated[
        Literal["thumbnails", "embeddings"],
        typer.Option(help="What near-duplicates are compared on: thumbnails (any copy keeps them), or embeddings "
                     "(the --model's features; a classifier's features make videos of one class alike)."),
    ] = "thumbnails",
    report: Annotated[Optional[Path], typer.Option(help="Write report.md, report.json and frame strips to this folder.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every finding to this JSON file.")] = None,
    label_issues: Annotated[
        bool, typer.Option("--label-issues", help="Find likely mislabelled videos (out-of-fold probabilities + cleanlab).")
    ] = False,
    folds: Annotated[int, typer.Option(min=2, help="Folds of the out-of-fold training.")] = LABEL_FOLDS,
    fold_recipe: Annotated[
        Literal["pretrained", "signature", "motion"],
        typer.Option(help="pretrained: a logistic regression on the pretrained features (global motion where the weights "
                     "are missing); signature: one on each video's global motion (seconds); motion: train the motion "
                     "preset per fold (minutes each)."),
    ] = LABEL_FOLD_RECIPES[0],
    fold_steps: Annotated[int, typer.Option(min=1, help="--fold-recipe motion: optimizer steps per fold model.")] = LABEL_FOLD_STEPS,
    seed: Annotated[int, typer.Option(help="Seed of the folds and their training.")] = 0,
    cache: Annotated[
        Optional[Path], typer.Option(help="Signature cache folder (default: $VIDCLS_AUDIT_CACHE, else ~/.cache/vidcls/audit).")
    ] = None,
    workers: WorkersOption = None,
    device: DeviceOption = None,
) -> None:
    """Find copies and clips of one recording across splits, likely mislabelled videos, imbalance and outliers."""
    from vidcls.audit.core import run_audit  # decoder and torch load only when a command needs them
    from vidcls.audit.report import clean_line, write_audit_report

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    result = run_audit(
        data, model=model, signature=signature, pretrained=pretrained, label_issues=label_issues, folds=folds, recipe=fold_recipe, fold_steps=fold_steps, seed=seed, cache_dir=cache,
        device=device, workers=workers,
    )
    console.print(
        f"[bold]{result.root}[/] ({result.layout} layout, split from {result.split_source}): {len(result.videos)} videos, "
        f"compared on {result.signature}; shared recordings: {result.recordings_method}", highlight=False, soft_wrap=True,
    )
    for line in result.headline or [clean_line(result)]:
        console.print(f"[bold {'red' if result.headline else 'green'}]{line}[/]", highlight=False)
    if result.pairs:
        console.print(_pairs_table(result))
    if result.label_issues is not None:
        console.print(_issues_table(result))
    for split, ratio in result.imbalance.items():
        console.print(f"[yellow]imbalanced[/] {split}: largest class {ratio:.1f}x the smallest", highlight=False)
    if result.outliers:
        console.print(f"{len(result.outliers)} outlying duration, frame rate, size or brightness values (see the report)")
    for failure in result.failed:
        console_err.print(f"[yellow]skipped[/] {failure['path']}: {failure['reason']}", highlight=False)
    if json_out:
        json_out.write_text(json.dumps(result.as_dict(), indent=2))
        console.print(f"[green]wrote[/] {json_out}", highlight=False)
    if report:
        console.print(f"[green]wrote[/] {write_audit_report(result, report)['markdown']}", highlight=False)
