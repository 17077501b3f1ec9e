"""Shared fixtures: a tiny motion dataset with broken files mixed in, and a tiny trained model."""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
# Scores are compared with transformers' pipeline and between paths to 1e-5: full precision, so
# the suite behaves the same on every CPU (tests/test_forward.py covers bf16 scoring).
os.environ["VIDCLS_PRECISION"] = "fp32"
# `vidcls audit`'s signature cache (also used by data, train and eval): never the user's.
os.environ["VIDCLS_AUDIT_CACHE"] = tempfile.mkdtemp(prefix="vidcls-audit-cache-")

from videos import moving_square, write_video  # noqa: E402

CLASSES = ("MoveLeft", "MoveRight", "MoveUp")
SPLIT_GROUPS = {"train": (1, 2, 3), "val": (4,), "test": (5,)}


def write_motion_dataset(root: Path, clips_per_group: int = 2, num_frames: int = 40) -> Path:
    """UCF101 layout: ROOT/<split>/<Class>/v_<Class>_gNN_cNN.avi, groups never shared by splits."""
    for split, groups in SPLIT_GROUPS.items():
        for label in CLASSES:
            for group in groups:
                for clip in range(1, clips_per_group + 1):
                    seed = zlib.crc32(f"{label}/{group}/{clip}".encode()) % 10_000  # stable across runs
                    path = root / split / label / f"v_{label}_g{group:02d}_c{clip:02d}.avi"
                    write_video(path, moving_square(label, num_frames=num_frames, seed=seed))
    return root


def add_broken_files(root: Path) -> list[Path]:
    """A truncated video, an empty file and a text file, inside class folders."""
    source = next((root / "train" / CLASSES[0]).glob("*.avi"))
    truncated = root / "train" / CLASSES[0] / "v_MoveLeft_g09_c01.avi"
    truncated.write_bytes(source.read_bytes()[:300])
    empty = root / "train" / CLASSES[1] / "v_MoveRight_g09_c01.mp4"
    empty.write_bytes(b"")
    text = root / "val" / CLASSES[2] / "notes.txt"
    text.write_text("not a video")
    return [truncated, empty, text]


# Fixtures that train a model: a test using one takes tens of seconds on two shared cores.
SLOW_FIXTURES = {"trained_model"}


def pytest_collection_modifyitems(items) -> None:
    """Mark every test that needs a trained model as slow, so `-m "not slow"` runs in under a minute."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def motion_dataset(tmp_path_factory) -> Path:
    """Clean split-layout dataset (3 classes x 5 groups x 2 clips)."""
    return write_motion_dataset(tmp_path_factory.mktemp("motion"))


@pytest.fixture(scope="session")
def broken_dataset(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The same dataset with a truncated, an empty and a non-video file mixed in."""
    root = write_motion_dataset(tmp_path_factory.mktemp("broken"))
    return root, add_broken_files(root)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, broken_dataset) -> Path:
    """A tiny VideoMAE trained for a few epochs on the broken dataset, saved as a model directory."""
    from vidcls.training.loop import TrainConfig
    from vidcls.training.run import train

    output = tmp_path_factory.mktemp("model") / "tiny"
    train(TrainConfig(
        data=str(broken_dataset[0]), output=str(output), model="tiny", epochs=3, batch_size=4,
        workers=0, flip=False, progress=False,
    ))
    return output
