"""The CLI answers --help and argument errors without loading torch, av or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
import time

HEAVY = ("torch", "av", "transformers", "fastapi")
PROBE = """
import json, sys, time
started = time.perf_counter()
import vidcls, vidcls.cli
from typer.main import get_command
get_command(vidcls.cli.app)  # every command and its options, as --help builds them
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "heavy": [m for m in sys.argv[1:] if m in sys.modules]}))
"""


def _vidcls(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vidcls.cli", *args], capture_output=True, text=True, timeout=60)
    return done, time.perf_counter() - started


def test_importing_the_cli_and_building_its_commands_loads_no_heavy_module():
    done = subprocess.run([sys.executable, "-c", PROBE, *HEAVY], capture_output=True, text=True, timeout=60)
    measured = json.loads(done.stdout)
    assert measured["heavy"] == []
    assert measured["seconds"] < 1.5, measured  # torch alone takes 1.5-4 s to import on this machine


def test_help_and_argument_errors_answer_fast():
    shown, seconds = _vidcls("--help")
    assert shown.returncode == 0 and "train" in shown.stdout and "eval" in shown.stdout
    assert seconds < 2.0
    refused, seconds = _vidcls("eval", "--no-such-option")
    assert refused.returncode == 2 and "No such option" in refused.stderr
    assert seconds < 2.0
