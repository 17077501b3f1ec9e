"""`vidcls push` without a reachable hub: one clear line, exit status 1."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import vidcls.cli.push  # noqa: F401  (registers `push`)
from vidcls.cli._app import app
from vidcls.errors import HubError, ModelError
from vidcls.publish.hub import push_model


def test_push_without_the_hub_says_so_in_one_line(trained_model):
    with pytest.raises(HubError, match="not reachable: HF_HUB_OFFLINE is set"):
        push_model(trained_model, "someone/tiny")
    result = CliRunner().invoke(app, ["push", str(trained_model), "someone/tiny"])
    assert result.exit_code != 0 and isinstance(result.exception, HubError)


def test_push_names_the_unreachable_endpoint(trained_model, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with pytest.raises(HubError, match=r"not reachable at http://127.0.0.1:9"):
        push_model(trained_model, "someone/tiny")


def test_push_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="not a model directory"):
        push_model(tmp_path, "someone/tiny")


def test_cli_push_without_the_hub_prints_one_line_and_exits_1(trained_model, monkeypatch, capsys):
    from vidcls.cli import main

    monkeypatch.setattr("sys.argv", ["vidcls", "push", str(trained_model), "someone/tiny"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: the hub is not reachable: HF_HUB_OFFLINE is set; unset it to push"
