"""ONNX export: parity with torch on real clips, and predict, eval and serve taking the exported directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import vidcls.cli.export  # noqa: F401  (registers `export`)
from conftest import CLASSES
from vidcls.cli._app import app
from vidcls.errors import ModelError, OutputExistsError
from vidcls.evaluation.evaluate import evaluate
from vidcls.publish.export import EXPORT_INFO_FILE, export_onnx
from vidcls.models.loading import load_model
from vidcls.models.onnx_runtime import OnnxVideoClassifier
from vidcls.inference.prediction import predict
from vidcls.serve.app import create_app
from vidcls.inference.options import ViewOptions

pytest.importorskip("onnxruntime")


def videos_of(dataset: Path) -> list[Path]:
    """The test split's videos, sorted."""
    return sorted((dataset / "test").rglob("*.avi"))


@pytest.fixture(scope="module")
def exported(trained_model, motion_dataset, tmp_path_factory) -> tuple[Path, object]:
    output = tmp_path_factory.mktemp("onnx") / "tiny-onnx"
    return output, export_onnx(trained_model, output, videos_of(motion_dataset))


def test_export_matches_torch_on_every_clip_of_real_videos(exported, motion_dataset):
    output, result = exported
    assert result.check_clips == 4 * len(videos_of(motion_dataset))  # the predict views of each video
    assert result.max_abs_prob_diff < 1e-4 and result.top1_agreement == 1.0 and result.passed
    assert {"model.onnx", "config.json", "preprocessor_config.json", EXPORT_INFO_FILE} <= {p.name for p in output.iterdir()}
    assert json.loads((output / EXPORT_INFO_FILE).read_text())["passed"] is True


def test_exported_directory_loads_with_the_model_labels_and_clip_settings(exported, trained_model):
    onnx, torch_model = load_model(str(exported[0])), load_model(str(trained_model))
    assert isinstance(onnx.model, OnnxVideoClassifier)
    assert onnx.labels == torch_model.labels == list(CLASSES)
    assert onnx.spec == torch_model.spec


def test_predict_and_eval_with_onnxruntime_agree_with_torch(exported, trained_model, motion_dataset):
    videos = videos_of(motion_dataset)
    with_onnx, with_torch = predict(exported[0], videos, ViewOptions(top_k=3)), predict(trained_model, videos, ViewOptions(top_k=3))
    for onnx_row, torch_row in zip(with_onnx, with_torch, strict=True):
        assert [t["label"] for t in onnx_row["top_k"]] == [t["label"] for t in torch_row["top_k"]]
        assert [t["score"] for t in onnx_row["top_k"]] == pytest.approx([t["score"] for t in torch_row["top_k"]], abs=1e-4)
    onnx_eval = evaluate(exported[0], motion_dataset, workers=0)
    torch_eval = evaluate(trained_model, motion_dataset, workers=0)
    assert onnx_eval.top1 == torch_eval.top1 and onnx_eval.confusion_matrix == torch_eval.confusion_matrix


def test_serve_answers_with_the_exported_model(exported, motion_dataset, tmp_path):
    video = videos_of(motion_dataset)[0]
    expected = predict(exported[0], [video], ViewOptions(top_k=2))[0]["top_k"]
    with TestClient(create_app(exported[0], tmp_dir=tmp_path)) as client:
        assert client.get("/health").json()["device"] == "cpu"
        response = client.post("/predict", params={"top_k": 2}, files={"file": (video.name, video.read_bytes(), "video/x-msvideo")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "tiny-onnx"
    assert [t["label"] for t in body["top_k"]] == [t["label"] for t in expected]


def test_cli_export_checks_random_clips_when_no_video_is_given(trained_model, tmp_path):
    result = CliRunner().invoke(app, ["export", str(trained_model), "--format", "onnx", "--output", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "random uint8 clips" in text and "top-1 agreement 1.000" in text and "ms/clip onnxruntime" in text


def test_export_refuses_a_used_folder_and_an_export(exported, trained_model, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ModelError, match="already an ONNX export"):
        export_onnx(exported[0], tmp_path / "again")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_onnx(trained_model, tmp_path)


def test_export_refuses_architectures_it_does_not_handle(tmp_path):
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    config = TimesformerConfig(
        image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=2,
    )
    TimesformerForVideoClassification(config).save_pretrained(tmp_path / "timesformer")
    with pytest.raises(ModelError, match="'timesformer' model; vidcls exports videomae"):
        export_onnx(tmp_path / "timesformer", tmp_path / "out")


def test_without_onnxruntime_the_error_says_what_to_install(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(ModelError, match=r"pip install 'vidcls\[onnx\]'"):
        load_model(str(exported[0]))
