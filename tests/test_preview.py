"""Preview GIFs: one GIF frame per model input frame, captioned with the model's prediction."""

from __future__ import annotations

import pytest
from PIL import Image
from typer.testing import CliRunner

import vidcls.cli.preview  # noqa: F401  (registers `preview`)
from vidcls.cli._app import app
from vidcls.errors import ModelError
from vidcls.inference.preview import write_preview


@pytest.fixture(scope="module")
def video(broken_dataset):
    return next((broken_dataset[0] / "test" / "MoveRight").glob("*.avi"))


def test_gif_holds_the_models_frames_with_its_prediction(trained_model, video, tmp_path):
    shown = write_preview(video, tmp_path / "p.gif", model=trained_model, clips=2)
    gif = Image.open(tmp_path / "p.gif")
    assert gif.n_frames == shown["num_frames"] == 16  # 2 clips x the model's 8 frames
    assert gif.size[0] == 224
    assert shown["prediction"]["label"] in ("MoveLeft", "MoveRight", "MoveUp")
    assert len(shown["frame_indices"]) == 16 and max(shown["frame_indices"]) < 40


def test_without_a_model_options_set_the_frames(video, tmp_path):
    shown = write_preview(video, tmp_path / "p.gif", num_frames=5, sample_rate=2, size=32, sampling="dense")
    assert Image.open(tmp_path / "p.gif").n_frames == 5 and shown["prediction"] is None
    assert shown["frame_indices"] == [15, 17, 19, 21, 23]  # the centre dense clip
    assert shown["spec"]["crop_size"] == 32
    segment = write_preview(video, tmp_path / "s.gif", num_frames=5, size=32)
    assert segment["frame_indices"] == [0, 8, 16, 24, 32]  # the 40-frame video in 5 segments


def test_frame_count_the_model_cannot_take_is_refused(trained_model, video, tmp_path):
    with pytest.raises(ModelError, match="8 frames"):
        write_preview(video, tmp_path / "p.gif", model=trained_model, num_frames=16)


def test_cli_preview(trained_model, video, tmp_path):
    out = tmp_path / "cli.gif"
    result = CliRunner().invoke(app, ["preview", str(video), "--out", str(out), "--model", str(trained_model)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).n_frames == 8 and "predicted" in result.stdout
