"""The Python API mirrors the CLI and keeps `import vidcls` cheap."""

from __future__ import annotations

import shutil
import subprocess
import sys

import vidcls
from conftest import CLASSES


def test_import_does_not_load_torch():
    code = "import sys, vidcls; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_api_functions_run_the_jobs(trained_model, broken_dataset, tmp_path):
    root, bad_paths = broken_dataset
    index = vidcls.discover(root)
    assert index.labels == sorted(CLASSES) and len(index.bad_files) == len(bad_paths)
    video = next((root / "test" / "MoveUp").glob("*.avi"))
    (single,) = vidcls.predict(trained_model, video, top_k=2)
    assert single["path"] == str(video) and len(single["top_k"]) == 2
    model = shutil.copytree(trained_model, tmp_path / "model")  # evaluation updates the card: not the shared model
    result = vidcls.evaluate(model, root, report=tmp_path / "report")
    assert result.num_videos == 6 and (tmp_path / "report" / "report.md").is_file()
    assert result.outputs == {"report": str(tmp_path / "report" / "report.md"), "model_card": str(model / "README.md")}
    assert (model / "README.md").read_text() != (trained_model / "README.md").read_text()  # scores added, as `vidcls eval` does
    shown = vidcls.preview(video, tmp_path / "seen.gif", model=str(trained_model))
    assert (tmp_path / "seen.gif").is_file() and shown["num_frames"] == 8
