"""The CLI answers --help and argument errors without loading torch, av or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from typer.testing import CliRunner

from videos import moving_square, write_video

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


def test_missing_model_directory_is_named_not_taken_for_a_hub_id(tmp_path):
    video = write_video(tmp_path / "x.avi", moving_square("MoveUp", 12, 32, 24))
    missing, _ = _vidcls("predict", "/no/such/dir", str(video))
    assert missing.returncode == 1 and "error: /no/such/dir: no such model directory" in missing.stderr
    assert "repo" not in missing.stderr.lower()
    (tmp_path / "empty_model").mkdir()
    no_config, _ = _vidcls("predict", str(tmp_path / "empty_model"), str(video))
    assert no_config.returncode == 1 and "not a model directory (no config.json)" in " ".join(no_config.stderr.split())


def test_training_on_one_class_is_refused_in_one_line(tmp_path):
    write_video(tmp_path / "data" / "Only" / "a.avi", moving_square("MoveUp", 12, 32, 24))
    refused, _ = _vidcls("train", str(tmp_path / "data"), "-o", str(tmp_path / "out"), "--epochs", "1")
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 1 and "found one class (Only); a classifier needs two or more" in message
    assert "Traceback" not in refused.stderr


def test_data_names_damaged_files_with_their_reason(tmp_path):
    import vidcls.cli.data  # noqa: F401  (registers `data`)
    from vidcls.cli._app import app

    for label in ("MoveLeft", "MoveUp"):
        write_video(tmp_path / label / "a.avi", moving_square(label, 12, 32, 24))
    whole = write_video(tmp_path / "whole.avi", moving_square("MoveUp", 69, 32, 24))
    (tmp_path / "MoveUp" / "cut.avi").write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    whole.unlink()
    shown = CliRunner().invoke(app, ["data", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert f"damaged {tmp_path / 'MoveUp' / 'cut.avi'}: the header claims 69 frames" in " ".join(shown.stderr.split())
