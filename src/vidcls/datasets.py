"""Map-style datasets over `VideoRecord`s, so an epoch is an epoch and `len()` works.

Workers decode and crop in uint8; normalisation happens on the device (see transforms).
A training clip's scale, crop and flip are drawn before decoding, so the decoder scales only
the pixels the crop keeps (`video_io.read_clip`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vidcls.errors import DatasetError, VideoReadError
from vidcls.layout import VideoRecord
from vidcls.sampling import random_clip_indices, uniform_clip_indices
from vidcls.transforms import ClipSpec, EvalTransform, TrainTransform
from vidcls.video_io import read_clip, read_frames

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 20


def default_workers() -> int:
    """Loader processes when none are asked for: one per core, at most 4."""
    return min(os.cpu_count() or 1, 4)


class TrainClipDataset(Dataset):
    """One random clip per video per epoch; a video that fails is logged and another taken."""

    def __init__(
        self, records: list[VideoRecord], label2id: dict[str, int], spec: ClipSpec, flip: bool = True
    ) -> None:
        self.records = records
        self.label2id = label2id
        self.spec = spec
        self.transform = TrainTransform(spec, flip=flip)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        # Seeded from torch so DataLoader's per-worker, per-epoch seeding makes runs reproducible.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        for _ in range(MAX_CONSECUTIVE_FAILURES):
            record = self.records[index]
            try:
                return self._load(record, rng), self.label2id[record.label]
            except VideoReadError as error:
                logger.warning("skipping %s for this sample: %s", error.path, error.reason)
                index = int(rng.integers(0, len(self.records)))
        raise DatasetError(f"{MAX_CONSECUTIVE_FAILURES} videos in a row failed to decode; last: {record.path}")

    def _load(self, record: VideoRecord, rng: np.random.Generator) -> torch.Tensor:
        indices = random_clip_indices(record.info.num_frames, self.spec.num_frames, self.spec.sample_rate, rng)
        window = self.transform.sample_window(record.info.width, record.info.height, rng)
        return torch.from_numpy(read_clip(record.path, indices, window))


@dataclass
class EvalSample:
    """All views of one video (clips x crops), or the reason it could not be read."""

    index: int
    views: torch.Tensor | None
    error: str | None = None


class EvalClipDataset(Dataset):
    """``num_clips`` uniformly spread clips x ``num_crops`` crops per video, for testing.

    Failures are returned, not raised, so an evaluation reports them and goes on.
    """

    def __init__(self, records: list[VideoRecord], spec: ClipSpec, num_clips: int = 1, num_crops: int = 1) -> None:
        self.records = records
        self.spec = spec
        self.num_clips = num_clips
        self.transform = EvalTransform(spec, num_crops=num_crops)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> EvalSample:
        record = self.records[index]
        try:
            return EvalSample(index, load_eval_views(record.path, record.info.num_frames, self.spec, self.num_clips, self.transform))
        except VideoReadError as error:
            logger.warning("could not read %s: %s", error.path, error.reason)
            return EvalSample(index, None, error.reason)


def read_views(path: str | Path, clips: list[np.ndarray], transform: EvalTransform) -> torch.Tensor:
    """Decode all clips in one pass and crop them: uint8 (clips, crops, T, C, H, W)."""
    frames = read_frames(path, np.concatenate(clips), short_side=transform.decode_short_side())
    per_clip = frames.reshape(len(clips), -1, *frames.shape[1:])
    return torch.stack([transform(clip) for clip in per_clip])


def load_eval_views(
    path, video_frames: int, spec: ClipSpec, num_clips: int, transform: EvalTransform
) -> torch.Tensor:
    """The test views of a video: ``num_clips`` uniform clips x crops, (clips * crops, T, C, H, W) uint8."""
    clips = uniform_clip_indices(video_frames, spec.num_frames, spec.sample_rate, num_clips)
    return read_views(path, clips, transform).flatten(0, 1)


def collate_eval(samples: list[EvalSample]) -> tuple[torch.Tensor | None, list[int], list[EvalSample]]:
    """Stack the readable videos' views: (videos, views, T, C, H, W); failures passed through."""
    good = [s for s in samples if s.views is not None]
    views = torch.stack([s.views for s in good]) if good else None
    return views, [s.index for s in good], [s for s in samples if s.views is None]
