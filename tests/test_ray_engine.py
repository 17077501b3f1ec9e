"""The Ray engine: manifests, a killed batch prediction resumed to every path once with `vidcls predict`'s
scores, and `vidcls eval --engine ray` giving the local JSON. Ray runs locally: 2 CPUs, loopback only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import vidcls.cli.evaluate  # noqa: F401  (registers `eval`)
import vidcls.cli.predict  # noqa: F401  (registers `predict`)
from vidcls.cli._app import app
from vidcls.errors import DatasetError, OutputExistsError, VidclsError, VideoReadError
from vidcls.inference.ray_engine import local_file, predict_to_parquet, read_manifest, score_paths
from vidcls.data.clip_spec import ClipSpec
from vidcls.inference.options import ViewOptions

ray = pytest.importorskip("ray")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def ray_address():
    """A Ray instance of this test process, bounded and loopback only; CLI subprocesses join it by address."""
    ray.init(
        address="local", num_cpus=2, object_store_memory=200 << 20, _memory=4 << 30, include_dashboard=False,
        _node_ip_address="127.0.0.1", log_to_driver=False,
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_manifest_is_a_glob_or_a_text_file_of_paths(tmp_path, monkeypatch):
    for name in ("a.avi", "sub/b.mp4", "sub/notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert read_manifest(f"{tmp_path}/**/*.mp4") == [str(tmp_path / "sub/b.mp4")]
    assert read_manifest(f"{tmp_path}/**/*") == [str(tmp_path / n) for n in ("a.avi", "sub/b.mp4", "sub/notes.txt")]
    assert read_manifest(f"file://{tmp_path}/s*/*.mp4") == [f"file://{tmp_path}/sub/b.mp4"]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# videos\n\na.avi\n  {tmp_path}/sub/b.mp4\na.avi\ns3://bucket/c.mp4\n")
    monkeypatch.chdir(tmp_path)  # relative lines are read from the current folder, and written absolute
    assert read_manifest(str(listing)) == [str(tmp_path / "a.avi"), str(tmp_path / "sub/b.mp4"), "s3://bucket/c.mp4"]
    with pytest.raises(DatasetError, match="missing.txt: could not read the manifest"):
        read_manifest(str(tmp_path / "missing.txt"))
    with pytest.raises(DatasetError, match="matches no file"):
        read_manifest(f"{tmp_path}/*.mkv")


def test_object_storage_files_are_decoded_from_a_local_copy(tmp_path):
    video = tmp_path / "a.avi"
    video.write_bytes(b"video bytes")
    with local_file(f"file://{video}") as copy:
        assert copy != str(video) and copy.endswith(".avi") and Path(copy).read_bytes() == b"video bytes"
    assert not Path(copy).exists()
    with pytest.raises(VideoReadError, match="could not fetch"):
        with local_file(f"file://{tmp_path}/missing.avi"):
            pass


@pytest.mark.slow
def test_model_copies_that_would_leave_no_cpu_to_decode_are_refused(ray_address):
    with pytest.raises(VidclsError, match="2 model copies leave none of the cluster's 2 CPUs"):
        next(score_paths("unused", ClipSpec(), ["a.avi"], ViewOptions(clips=1), model_copies=2, device="cpu"))


def _videos_with_broken_files(broken_dataset, folder: Path) -> tuple[list[Path], list[Path]]:
    """Every file of the dataset: 30 videos, and a truncated video, an empty one and a text file."""
    root, bad = broken_dataset
    shutil.copytree(root, folder)
    return sorted(p for p in folder.rglob("*") if p.is_file()), [folder / p.relative_to(root) for p in bad]


def _rows(output: Path) -> pd.DataFrame:
    return pd.read_parquet(output) if list(output.glob("part-*.parquet")) else pd.DataFrame({"path": []})


def test_batch_prediction_survives_a_kill_and_matches_vidcls_predict(trained_model, broken_dataset, ray_address, tmp_path):
    files, broken = _videos_with_broken_files(broken_dataset, tmp_path / "videos")
    output = tmp_path / "predictions.parquet"
    command = [
        sys.executable, "-m", "vidcls.cli", "predict", str(trained_model), "--engine", "ray", "--manifest",
        f"{tmp_path / 'videos'}/**/*", "--output", str(output), "--part-size", "1", "--batch-size", "1", "--top-k", "3",
        "--window", "0.5",
    ]
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # Ray's start-up alone takes over a minute on 2 busy cores
    while not list(output.glob("part-*.parquet")) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.kill()
    first.wait()
    before = _rows(output)
    assert 0 < len(before) < len(files), "the kill should land mid-run"
    assert before["path"].is_unique

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"{len(before)} already in" in second.stdout
    rows = _rows(output).set_index("path")
    assert rows.index.is_unique and sorted(rows.index) == [str(f) for f in files]
    assert not list(output.glob(".*.tmp"))
    failed = rows[rows["error"].notna()]
    assert set(failed.index) == {str(f) for f in broken}
    assert failed["label"].isna().all() and (failed["error"].str.len() > 0).all()

    local = CliRunner().invoke(app, ["predict", str(trained_model), str(tmp_path / "videos"), "--json", "--top-k", "3",
                                     "--window", "0.5"])
    expected = [json.loads(line) for line in local.stdout.splitlines()]
    assert len(expected) == len(rows) - len(failed)
    for video in expected:
        row = rows.loc[video["path"]]
        assert list(row["top_k_labels"]) == [t["label"] for t in video["top_k"]]
        assert list(row["top_k_scores"]) == pytest.approx([t["score"] for t in video["top_k"]], abs=1e-5)
        assert row["label"] == video["top_k"][0]["label"] and row["duration"] == pytest.approx(video["duration"])
        timeline = json.loads(row["timeline"])
        assert [(w["start"], w["end"]) for w in timeline] == [(w["start"], w["end"]) for w in video["windows"]]
        for ours, theirs in zip(timeline, video["windows"]):
            assert [t["score"] for t in ours["top_k"]] == pytest.approx([t["score"] for t in theirs["top_k"]], abs=1e-5)

    again = predict_to_parquet(str(trained_model), f"{tmp_path / 'videos'}/**/*", str(output), ViewOptions(top_k=3, window=0.5))
    assert (again.skipped, again.written) == (len(files), 0) and len(_rows(output)) == len(files)
    with pytest.raises(OutputExistsError, match="top_k: 3 then, 5 now"):
        predict_to_parquet(str(trained_model), f"{tmp_path / 'videos'}/**/*", str(output), ViewOptions(window=0.5))


def _assert_same(local, remote, where: str = "result") -> None:
    """Equal JSON, floats to 1e-5."""
    if isinstance(local, dict):
        assert local.keys() == remote.keys(), where
        for key in local:
            _assert_same(local[key], remote[key], f"{where}.{key}")
    elif isinstance(local, list):
        assert len(local) == len(remote), where
        for i, (a, b) in enumerate(zip(local, remote)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(local, float):
        assert remote == pytest.approx(local, abs=1e-5), where
    else:
        assert local == remote, where


def test_eval_on_ray_gives_the_local_json(trained_model, broken_dataset, ray_address, tmp_path):
    results = {}
    for engine, parallel in (("local", ["--workers", "0"]), ("ray", ["--model-copies", "1"])):
        out = tmp_path / f"{engine}.json"
        done = CliRunner().invoke(app, ["eval", str(trained_model), str(broken_dataset[0]), "--split", "train",
                                        "--engine", engine, *parallel, "--json", str(out)])
        assert done.exit_code == 0, done.output
        results[engine] = json.loads(out.read_text())
    assert results["local"]["failed"] and results["local"]["num_videos"] == 18  # the train split's broken files
    for result in results.values():
        del result["videos_per_s"]
    _assert_same(results["local"], results["ray"])
