"""`run_benchmark` and `vidcls benchmark` on a few tiny videos: the result's keys and sane values, no timing thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videos import moving_square, write_video
from vidcls.benchmarking import LOADER_BATCHES_FACTOR, check_targets, loader_warmup_batches, run_benchmark, select_records
from vidcls.models.loading import create_model
from vidcls.models.saving import save_model

FIGURES = (
    "loader_clips_per_s", "train_clips_per_s", "data_wait_fraction", "predict_ms_per_video",
    "pipeline_ms_per_video", "top1_agree", "peak_rss_mb", "peak_pss_mb",
)
TARGETS = ("loader_clips_per_s", "loader_peak_pss_mb", "predict_speedup_vs_pipeline", "top1_agree",
           "data_wait_fraction", "predict_onnx_speedup_vs_pipeline")
PREDICT_ROWS = ("predict", "predict_onnx", "predict_one_by_one", "pipeline")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    for label in ("MoveLeft", "MoveRight"):
        for clip in (1, 2):
            write_video(root / label / f"v_{label}_g01_c{clip:02d}.avi", moving_square(label, num_frames=40, seed=clip))
    return root


@pytest.fixture(scope="module")
def result(tiny_data) -> dict:
    return run_benchmark(tiny_data, "tiny", videos=4, batches=2, warmup_batches=1, batch_size=2, workers=0)


@pytest.mark.slow  # benchmarks a model
def test_result_has_every_figure_and_sane_values(result):
    for key in FIGURES:
        assert isinstance(result[key], float), key
    for key in ("loader_clips_per_s", "train_clips_per_s", "predict_ms_per_video", "pipeline_ms_per_video", "peak_rss_mb", "peak_pss_mb"):
        assert result[key] > 0, key
    assert 0 <= result["data_wait_fraction"] <= 1
    assert 0 <= result["top1_agree"] <= 1
    assert result["loader"]["clips"] == 2 * 2 * LOADER_BATCHES_FACTOR  # batches of 2, after the warm-up
    assert result["loader"]["warmup_batches"] == loader_warmup_batches(4, 0, 2, 1)
    assert result["loader"]["peak_pss_mb_all_processes"] <= result["loader"]["peak_rss_mb_all_processes"]
    assert result["loader"]["batch_shape"] == [2, 16, 3, 224, 224]  # the guide's clips, uint8
    assert result["loader"]["batch_dtype"] == "torch.uint8"
    assert isinstance(result["predict_onnx_ms_per_video"], float) and result["predict_onnx_ms_per_video"] > 0
    assert tuple(result["prediction"]) == PREDICT_ROWS  # torch and onnxruntime beside the pipeline
    for row in result["prediction"].values():
        assert row["videos"] == 4 and row["ms_per_video"] > 0 and row["cpu_ms_per_video"] > 0
        assert 0 <= row["top1_agree"] <= 1 and row["speedup_vs_pipeline"] > 0
    assert result["prediction"]["pipeline"]["top1_agree"] == 1.0  # itself


def test_the_loader_warms_until_each_process_has_read_each_video_a_few_times():
    assert loader_warmup_batches(48, 2, 8, 2) == 48  # 4 reads x 48 videos x 2 processes / 8 a batch
    assert loader_warmup_batches(4, 0, 2, 1) == 8  # no worker processes: the main process reads
    assert loader_warmup_batches(1, 1, 8, 5) == 5  # never fewer than asked for


@pytest.mark.slow  # benchmarks a model
def test_result_records_machine_and_settings(result):
    assert result["torch"] and result["device"] == "cpu" and result["cores"] >= 1
    settings = result["settings"]
    assert settings["model"] == "tiny" and settings["videos"] == 4 and settings["workers"] == 0
    assert settings["loader_spec"]["num_frames"] == 16 and settings["loader_spec"]["sample_rate"] == 4
    assert settings["loader_spec"]["crop_size"] == 224
    assert settings["model_spec"]["num_frames"] == 8
    assert settings["predict_views"].startswith("1 segment clip")  # the pipeline's frames
    assert settings["video_frames"] == {"min": 40, "mean": 40.0, "max": 40}
    assert "fewer than 150 frames" in result["warning"]  # 40-frame files do not measure seeking
    json.dumps(result)  # plain data


@pytest.mark.slow  # benchmarks a model
def test_every_target_has_a_verdict(result):
    assert set(result["targets"]) == set(TARGETS)
    for target in result["targets"].values():
        assert isinstance(target["pass"], bool) and isinstance(target["target"], str)


def test_check_targets_thresholds():
    good = {"loader_clips_per_s": 120.0, "loader": {"peak_pss_mb_all_processes": 1900.0}, "pipeline_ms_per_video": 100.0,
            "predict_ms_per_video": 30.0, "top1_agree": 1.0, "data_wait_fraction": 0.05}
    assert all(t["pass"] for t in check_targets(good).values())
    bad = {**good, "loader_clips_per_s": 50.0, "loader": {"peak_pss_mb_all_processes": 2100.0}, "predict_ms_per_video": 60.0,
           "top1_agree": 0.9, "data_wait_fraction": 0.2}
    assert not any(t["pass"] for t in check_targets(bad).values())
    with_onnx = check_targets({**good, "predict_onnx_ms_per_video": 25.0})["predict_onnx_speedup_vs_pipeline"]
    assert with_onnx["pass"] and with_onnx["value"] == 4.0


def test_select_records_takes_classes_in_turn(tiny_data):
    records, labels = select_records(tiny_data, 3)
    assert labels == ["MoveLeft", "MoveRight"]
    assert [r.label for r in records] == ["MoveLeft", "MoveRight", "MoveLeft"]


@pytest.fixture(scope="module")
def split_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("split")
    for split, clips in (("train", (1, 2)), ("test", (3, 4, 5))):
        for label in ("MoveLeft", "MoveRight"):
            for clip in clips:
                write_video(root / split / label / f"v_{label}_g{clip:02d}_c01.avi", moving_square(label, num_frames=40, seed=clip))
    return root


@pytest.mark.slow  # benchmarks a model
def test_a_model_folder_is_measured_on_eval_and_predict_at_its_default_views_and_left_as_it_was(split_data, tmp_path):
    model_dir = tmp_path / "model"
    save_model(create_model("tiny", ["MoveLeft", "MoveRight"]), model_dir)
    before = sorted(p.relative_to(model_dir) for p in model_dir.rglob("*"))
    result = run_benchmark(split_data, str(model_dir), videos=4, measure=("predict", "eval"))
    assert "loader_clips_per_s" not in result and "train" not in result and "peak_rss_mb" not in result
    evaluation = result["evaluation"]
    assert evaluation["videos"] == 6 and evaluation["clips"] == json.loads((model_dir / "config.json").read_text())["vidcls"]["clips"]
    assert result["eval_s_per_video"] == pytest.approx(evaluation["eval_seconds"] / 6) and result["predict_default_ms_per_video"] > 0
    assert set(result["targets"]) == {"predict_speedup_vs_pipeline", "top1_agree", "predict_onnx_speedup_vs_pipeline",
                                      "eval_s_per_video", "predict_default_s_per_video"}
    assert sorted(p.relative_to(model_dir) for p in model_dir.rglob("*")) == before  # nothing written into it


@pytest.mark.slow  # benchmarks a model
def test_cli_prints_json_and_writes_the_file(tiny_data, tmp_path):
    from typer.testing import CliRunner

    import vidcls.cli.benchmark  # noqa: F401  (registers the command)
    from vidcls.cli._app import app

    out = tmp_path / "out.json"
    args = ["benchmark", str(tiny_data), "--videos", "2", "--batches", "1", "--warmup-batches", "0", "--workers", "0"]
    outcome = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert outcome.exit_code == 0, outcome.output
    written = json.loads(out.read_text())
    assert set(FIGURES) <= set(written) and written["settings"]["videos"] == 2
    refused = CliRunner().invoke(app, [*args, "--measure", "speed"])
    assert refused.exit_code == 2 and "speed" in refused.output
