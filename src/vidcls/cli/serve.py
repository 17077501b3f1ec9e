"""`vidcls serve`: the HTTP API and web page for one model, run by uvicorn."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from vidcls.cli._app import DeviceOption, app, console
from vidcls.defaults import SERVE_MAX_UPLOAD_MB


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="Trained model directory (or hub id).")],
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    max_upload_mb: Annotated[float, typer.Option(min=1, help="Largest video accepted, in MB.")] = SERVE_MAX_UPLOAD_MB,
    processes: Annotated[int, typer.Option(min=1, help="Server processes, each with its own copy of the model.")] = 1,
    device: DeviceOption = None,
) -> None:
    """Serve a model: a web page at / and a JSON API at /predict (docs at /docs)."""
    import uvicorn

    from vidcls.serve.app import SETTINGS_ENV  # torch loads only when a command needs it

    # Server processes build the app themselves, so its arguments travel in the environment.
    os.environ[SETTINGS_ENV] = json.dumps(dict(model_dir=model, max_upload_mb=max_upload_mb, device=device))
    console.print(f"[green]serving[/] {model} on http://{host}:{port} (docs at /docs)", highlight=False)
    uvicorn.run("vidcls.serve.app:create_app_from_env", factory=True, host=host, port=port, workers=processes)
