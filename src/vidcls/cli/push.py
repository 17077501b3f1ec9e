"""`vidcls push`: upload a trained model directory to the Hugging Face hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidcls.cli._app import app, console


@app.command()
def push(
    model: Annotated[Path, typer.Argument(help="Trained (or exported) model directory.")],
    repo_id: Annotated[str, typer.Argument(help="Hub repository, owner/name; created when missing.")],
    private: Annotated[bool, typer.Option(help="Create the repository as private.")] = False,
) -> None:
    """Upload a model with its card to the hub (log in first: hf auth login, or set HF_TOKEN)."""
    from vidcls.publish.hub import push_model

    url = push_model(model, repo_id, private=private)
    console.print(f"[green]pushed[/] {model} to {url}", highlight=False, soft_wrap=True)
