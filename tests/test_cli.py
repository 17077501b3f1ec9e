"""The CLI answers --help and argument errors without loading torch, av or transformers."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from videos import moving_square, write_video

HEAVY = ("torch", "av", "transformers", "fastapi")
PROBE = """
import json, sys
import vidcls, vidcls.cli
from typer.main import get_command
get_command(vidcls.cli.app)  # every command and its options, as --help builds them
print(json.dumps([m for m in sys.argv[1:] if m in sys.modules]))
"""


def _vidcls(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcls.cli", *args], capture_output=True, text=True, timeout=60)


def test_importing_the_cli_and_building_its_commands_loads_no_heavy_module():
    done = subprocess.run([sys.executable, "-c", PROBE, *HEAVY], capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout) == []  # help stays fast: its time is in benchmarks, not here


def test_help_and_argument_errors_answer():
    shown = _vidcls("--help")
    assert shown.returncode == 0 and "train" in shown.stdout and "eval" in shown.stdout
    refused = _vidcls("eval", "--no-such-option")
    assert refused.returncode == 2 and "No such option" in refused.stderr


def test_missing_model_directory_is_named_not_taken_for_a_hub_id(tmp_path):
    video = write_video(tmp_path / "x.avi", moving_square("MoveUp", 12, 32, 24))
    missing = _vidcls("predict", "/no/such/dir", str(video))
    assert missing.returncode == 1 and "error: /no/such/dir: no such model directory" in missing.stderr
    assert "repo" not in missing.stderr.lower()
    (tmp_path / "empty_model").mkdir()
    no_config = _vidcls("predict", str(tmp_path / "empty_model"), str(video))
    assert no_config.returncode == 1 and "not a model directory (no config.json)" in " ".join(no_config.stderr.split())


def test_training_on_one_class_is_refused_in_one_line(tmp_path):
    write_video(tmp_path / "data" / "Only" / "a.avi", moving_square("MoveUp", 12, 32, 24))
    refused = _vidcls("train", str(tmp_path / "data"), "-o", str(tmp_path / "out"), "--epochs", "1")
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
