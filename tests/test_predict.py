"""Prediction: files and folders, bad files reported not raised, the CLI's exit status, agreement with transformers."""

from __future__ import annotations

import json
import threading
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import vidcls.cli.predict  # noqa: F401  (registers `predict`)
from conftest import CLASSES
from vidcls.cli._app import app
from vidcls.models.loading import load_model
from vidcls.errors import VideoReadError
from vidcls.inference.prediction import VideoClassifier, _ReadAhead, predict
from vidcls.inference.options import ViewOptions


@pytest.fixture(scope="module")
def classifier(trained_model):
    return VideoClassifier(load_model(str(trained_model)))


def test_predict_reads_folders_recursively_and_reports_bad_files(classifier, broken_dataset, tmp_path):
    root, bad = broken_dataset
    (tmp_path / "empty").mkdir()
    results = predict(classifier.loaded, [root / "test" / "MoveUp", bad[0], tmp_path / "missing.mp4", tmp_path / "empty"],
                      ViewOptions(top_k=2, window=0.5))
    good, failed = [r for r in results if "error" not in r], [r for r in results if "error" in r]
    assert len(good) == 2 and len(failed) == 3
    assert {r["path"] for r in failed} == {str(bad[0]), str(tmp_path / "missing.mp4"), str(tmp_path / "empty")}
    for result in good:
        assert set(result) == {"path", "top_k", "duration", "windows", "warnings"}
        assert len(result["top_k"]) == 2 and result["top_k"][0]["label"] in CLASSES
        assert result["duration"] == pytest.approx(1.6)
        assert [w["start"] for w in result["windows"]] == [0.0, 0.48, 0.96, 1.44]  # 12-frame windows at 25 fps
    json.dumps(results)


def test_batches_give_what_one_file_at_a_time_gives_and_name_a_broken_file(classifier, broken_dataset):
    root, bad = broken_dataset
    videos = sorted((root / "test").rglob("*.avi"))
    paths = [*videos[:3], bad[0], *videos[3:]]  # a truncated file in the middle of a batch
    options = ViewOptions(top_k=3, clips=2, window=0.8)
    batched = list(classifier.predict_files(paths, options, batch_size=4, decode_threads=2))
    assert [r["path"] for r in batched] == [str(p) for p in paths]  # input order, whatever finished first
    assert "error" in batched[3] and sum("error" in r for r in batched) == 1
    for path, result in zip(videos, batched[:3] + batched[4:]):
        alone = classifier.predict(path, options)
        assert [t["label"] for t in result["top_k"]] == [t["label"] for t in alone.top_k]
        assert [t["score"] for t in result["top_k"]] == pytest.approx([t["score"] for t in alone.top_k], abs=1e-5)
        assert [w["start"] for w in result["windows"]] == [w["start"] for w in alone.windows]
        for ours, single in zip(result["windows"], alone.windows):
            assert ours["top_k"][0]["score"] == pytest.approx(single["top_k"][0]["score"], abs=1e-5)


def test_the_model_starts_on_the_first_video_read_and_takes_the_others_read_meanwhile():
    slow_reads = threading.Event()

    def read(path: Path) -> str:
        if path.name != "first":
            slow_reads.wait(10)
        if path.name == "bad":
            raise VideoReadError(path, "cannot open as a video")
        return path.name.upper()

    paths = [Path(name) for name in ("first", "second", "bad", "fourth", "fifth")]
    with ThreadPoolExecutor(2) as pool:
        reads = _ReadAhead(read, paths, pool, ahead=4)
        assert reads.next_batch(4) == [(Path("first"), "FIRST")]  # not held back by the slow ones
        slow_reads.set()
        futures.wait([future for _, future in reads.pending])
        batch = reads.next_batch(3)  # everything read by now, up to the batch size, in order
        assert [(path, getattr(outcome, "reason", outcome)) for path, outcome in batch] == [
            (Path("second"), "SECOND"), (Path("bad"), "cannot open as a video"), (Path("fourth"), "FOURTH"),
        ]
        assert reads.next_batch(3) == [(Path("fifth"), "FIFTH")] and reads.next_batch(3) == []


def test_more_clips_than_fit_in_a_short_video(classifier, broken_dataset):
    video = next((broken_dataset[0] / "test" / "MoveLeft").glob("*.avi"))  # 40 frames, 8 per clip
    views = classifier.preprocess(video, ViewOptions(clips=8))
    assert views.views.shape[0] == 8 and all(0 <= c.min() and c.max() < 40 for c in views.clip_indices)
    # 8 segments of 5 frames hold only 5 places: the 8 clips repeat some and together read every frame
    assert set(np.concatenate(views.clip_indices).tolist()) == set(range(40))
    per_clip = classifier.score(views.views.unsqueeze(1))  # each clip scored alone
    prediction = classifier.predict(video, ViewOptions(clips=8, top_k=3))
    for entry in prediction.top_k:  # the video's score is the mean of its clips'
        expected = per_clip[:, classifier.labels.index(entry["label"])].mean()
        assert entry["score"] == pytest.approx(float(expected), abs=1e-5)


def test_one_clip_is_what_transformers_pipeline_gives_at_its_defaults(classifier, trained_model, broken_dataset):
    from transformers import pipeline

    reference = pipeline("video-classification", model=str(trained_model))  # as the guide calls it
    assert type(reference.video_processor).__name__ == "VideoMAEVideoProcessor"
    for label in CLASSES:
        video = str(next((broken_dataset[0] / "test" / label).glob("*.avi")))
        expected = {r["label"]: r["score"] for r in reference(video, top_k=3)}
        ours = {r["label"]: r["score"] for r in classifier.predict(video, ViewOptions(clips=1, top_k=3)).top_k}
        for name, score in expected.items():
            assert ours[name] == pytest.approx(score, abs=1e-3)


def test_three_crops_and_dense_sampling_are_options(classifier, broken_dataset):
    video = next((broken_dataset[0] / "test" / "MoveLeft").glob("*.avi"))
    views = classifier.preprocess(video, ViewOptions(clips=2, crops=3, sampling="dense"))
    assert views.views.shape[:2] == (6, classifier.spec.num_frames)
    assert all(np.all(np.diff(clip) == classifier.spec.sample_rate) for clip in views.clip_indices)
    prediction = classifier.predict(video, ViewOptions(clips=2, crops=3))
    assert sum(t["score"] for t in prediction.top_k) == pytest.approx(1, abs=1e-5)


def test_cli_predict_json_lines_and_exit_status(trained_model, broken_dataset):
    root, bad = broken_dataset
    result = CliRunner().invoke(app, ["predict", str(trained_model), str(root / "test" / "MoveLeft"), str(bad[1]),
                                      "--json", "--top-k", "1", "--clips", "1"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and all(len(line["top_k"]) == 1 for line in lines)
    assert bad[1].name in result.stderr


def test_cli_predict_table(trained_model, broken_dataset):
    video = next((broken_dataset[0] / "test" / "MoveUp").glob("*.avi"))
    result = CliRunner().invoke(app, ["predict", str(trained_model), str(video), "--window", "1"])
    assert result.exit_code == 0, result.output
    assert "prediction" in result.stdout and any(label in result.stdout for label in CLASSES)
    assert "from (s)" in result.stdout  # the timeline table
