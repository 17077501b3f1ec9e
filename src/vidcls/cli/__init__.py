"""The `vidcls` command: one typer app, one module per command group.

Each command module registers its commands on `app` when imported; commands parse
arguments, call one library function and render the result. Known errors
(`VidclsError`) become one red line and exit code 1; set VIDCLS_DEBUG=1 for the traceback.
"""

from __future__ import annotations

import os
import sys

# Before anything imports transformers: its per-file load/save bars mean nothing to a vidcls user.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# Before anything imports torch, whose OpenMP runtime reads this once: a thread that finishes its share
# of an operation sleeps instead of spinning, so a busy neighbour process slows training in proportion
# to the core it takes instead of several-fold (benchmarks/speed.md). Library users set it themselves.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vidcls.cli._app import app, console_err  # noqa: E402
from vidcls.errors import VidclsError  # noqa: E402

# Command modules register themselves on `app` at import.
from vidcls.cli import data as _data  # noqa: E402,F401
from vidcls.cli import train as _train  # noqa: E402,F401
from vidcls.cli import sample as _sample  # noqa: E402,F401
from vidcls.cli import evaluate as _evaluate  # noqa: E402,F401
from vidcls.cli import predict as _predict  # noqa: E402,F401
from vidcls.cli import preview as _preview  # noqa: E402,F401
from vidcls.cli import demo as _demo  # noqa: E402,F401
from vidcls.cli import serve as _serve  # noqa: E402,F401
from vidcls.cli import benchmark as _benchmark  # noqa: E402,F401
from vidcls.cli import export as _export  # noqa: E402,F401
from vidcls.cli import push as _push  # noqa: E402,F401
from vidcls.cli import audit as _audit  # noqa: E402,F401
from vidcls.cli import pretrained as _pretrained  # noqa: E402,F401


def main() -> None:
    """Entry point of the `vidcls` script."""
    try:
        app()
    except VidclsError as error:
        if os.environ.get("VIDCLS_DEBUG"):
            raise
        console_err.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
