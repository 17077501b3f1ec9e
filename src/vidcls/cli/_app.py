"""The shared typer app and consoles every command module uses."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer
from rich.console import Console

from vidcls.data.sampling import Sampling

app = typer.Typer(
    name="vidcls",
    help="Turn a folder of labelled videos into a video classifier: train, evaluate, predict, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
console_err = Console(stderr=True)

# Shared options, defined once (rich would read "[default: ...]" in help text as markup).
DeviceOption = Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 (default: cuda if present).")]
WorkersOption = Annotated[Optional[int], typer.Option(help="Data loader processes (default: cores, at most 4).")]
SamplingOption = Annotated[
    Optional[Sampling],
    typer.Option(help="segment: one frame per equal part of the video (what transformers.pipeline reads); "
                 "dense: a run of frames every --sample-rate. Default: what the model was trained with."),
]
EngineOption = Annotated[
    Literal["local", "ray"],
    typer.Option(help="local: this process; ray: Ray Data tasks decode, --model-copies actors run the model "
                 "(pip install -e '.[ray]'; a Ray instance started here, or --ray-address)."),
]
ModelCopiesOption = Annotated[
    Optional[int], typer.Option(min=1, help="With --engine ray: copies of the model, one Ray actor each (default: one per GPU, else 1).")
]
RayAddressOption = Annotated[
    Optional[str],
    typer.Option(envvar="RAY_ADDRESS", help="A running Ray cluster (ray://host:10001, host:6379, auto); default: start one here."),
]
LeakageCheckOption = Annotated[
    Literal["on", "off"],
    typer.Option(help="on: compare every video's frames across splits (cached) and warn about held-out videos "
                 "with a copy in another split (the cheap check: clips of one recording are `vidcls audit`'s); off: skip."),
]
