"""The demo, the README's first command: its four steps on a small run, and a folder it must not touch."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidcls.demo import DEMO_MARKER, _prepare_workdir, run_demo
from vidcls.errors import OutputExistsError


def test_a_folder_the_demo_did_not_make_is_left_alone_and_its_own_is_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not made by `vidcls demo`"):
        run_demo(tmp_path, say=lambda line: None)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    earlier = tmp_path / "earlier"
    _prepare_workdir(earlier, say=lambda line: None)
    (earlier / "model").mkdir()
    said: list[str] = []
    _prepare_workdir(earlier, say=said.append)
    assert not (earlier / "model").exists() and (earlier / DEMO_MARKER).is_file() and "replacing" in said[0]


@pytest.mark.slow
def test_the_demo_samples_trains_evaluates_and_predicts(tmp_path):
    lines: list[str] = []
    result = run_demo(tmp_path / "demo", per_class=12, time_budget=0.05, say=lines.append)
    assert [line[:3] for line in lines if line[1:4] == "/4 "] == ["1/4", "2/4", "3/4", "4/4"]
    assert (Path(result.model_dir) / "model.safetensors").is_file()
    assert (Path(result.report_dir) / "report.md").is_file()
    assert 0.0 <= result.test_top1 <= 1.0 and len(result.prediction["top_k"]) == 3
