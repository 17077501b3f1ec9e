"""Map-style datasets over `VideoRecord`s, so an epoch is an epoch and `len()` works.

Workers decode and crop in uint8; normalisation happens on the device (see transforms).
A training clip's scale, crop and flip are drawn before decoding, so the decoder scales only
the pixels the crop keeps (`decode.read_clips`); short training videos are decoded once and
kept in memory (`kept_frames.KeptVideos`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import psutil
import torch
from torch.utils.data import Dataset, Sampler, default_collate

from vidcls.errors import DatasetError, VideoReadError
from vidcls.data.discovery import VideoRecord
from vidcls.data.views import train_views, video_views
from vidcls.data.clip_spec import ClipSpec
from vidcls.data.transforms import EvalTransform, TrainTransform
from vidcls.data.kept_frames import KeptVideos

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 20
# Memory for training videos kept decoded (`KeptVideos`), over all loader processes: at most
# 4 GiB or an eighth of the machine's memory. Kept frames are scaled to the largest training
# short side: a 3 s 30 fps 256x192 clip is 3.5 MB for the `motion` preset (112 px crops), a
# 7 s 25 fps 320x240 one 20 MB for VideoMAE's 224 px.
MAX_KEPT_VIDEO_BYTES = 4 << 30
# Longer videos are decoded per clip: keeping one costs decoding all of its frames once.
MAX_KEPT_VIDEO_FRAMES = 600


def kept_video_budget(workers: int) -> int:
    """Bytes of kept training videos per loader process (each keeps the videos it reads)."""
    return min(MAX_KEPT_VIDEO_BYTES, psutil.virtual_memory().total // 8) // max(1, workers)


def default_workers() -> int:
    """Loader processes when none are asked for: one per core, at most 4."""
    return min(os.cpu_count() or 1, 4)


class EpochSampler(Sampler):
    """A shuffled order per epoch that follows from (seed, epoch) alone; yields (index, seed, epoch)
    keys, so each clip's random draws follow from them too, whichever worker reads it and
    whether or not the run was resumed (`set_epoch` before each epoch).

    With ``world_size`` processes, process ``rank`` takes every world_size-th key of the same
    order, padded by repeating its start to a multiple of world_size (as DistributedSampler
    does): the ranks' n-th batches of batch/world_size keys together are one process's n-th
    batch of batch keys, so a run sees the same clips per step whatever the number of processes.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.seed, self.epoch = size, seed, 1
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.size / self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        padded = np.resize(order, len(self) * self.world_size)  # np.resize repeats from the start
        return ((int(index), self.seed, self.epoch) for index in padded[self.rank :: self.world_size])


class TrainClipDataset(Dataset):
    """``clips_per_video`` random clips per video per epoch; a video that fails is logged and another taken.

    Items are keyed by (index, seed, epoch) (see `EpochSampler`): a clip's random draws follow from its key.
    An item is (clips (clips_per_video, T, C, H, W) uint8, label); `collate_train` makes the batch.
    Several clips of one video share one decoding pass (repeated augmentation, as VideoMAE's
    fine-tuning ``num_sample``): on H.264 files a segment clip decodes nearly the whole video,
    and the second clip costs only its scaling. With ``kept_bytes``, each loader process keeps
    up to that much of the videos it decodes (`KeptVideos`), so later epochs decode nothing.
    """

    def __init__(
        self,
        records: list[VideoRecord],
        label2id: dict[str, int],
        spec: ClipSpec,
        flip: bool = True,
        clips_per_video: int = 1,
        kept_bytes: int = 0,
    ) -> None:
        self.records = records
        self.label2id = label2id
        self.spec = spec
        self.transform = TrainTransform(spec, flip=flip)
        self.clips_per_video = clips_per_video
        self.kept = KeptVideos(kept_bytes, MAX_KEPT_VIDEO_FRAMES) if kept_bytes else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
        index, seed, epoch = key
        rng = np.random.default_rng([seed, epoch, index])
        for _ in range(MAX_CONSECUTIVE_FAILURES):
            record = self.records[index]
            try:
                clips = train_views(
                    record.path, record.info, self.spec, self.transform, rng, self.clips_per_video, self.kept
                )
                return clips, self.label2id[record.label]
            except VideoReadError as error:
                logger.warning("skipping %s for this sample: %s", error.path, error.reason)
                index = int(rng.integers(0, len(self.records)))
        raise DatasetError(f"{MAX_CONSECUTIVE_FAILURES} videos in a row failed to decode; last: {record.path}")


def collate_train(samples: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(videos * clips_per_video, T, C, H, W) uint8 clips and their labels, a video's clips side by side.

    Stacked by `default_collate`, which in a loader process writes the batch straight into shared
    memory: a batch made with ``torch.cat`` and moved there when queued stayed in the worker's
    heap, 18 MB a batch of 8 guide clips, without end (benchmarks/speed.md, "Loader memory").
    """
    clips = default_collate([video_clips for video_clips, _ in samples]).flatten(0, 1)
    labels = torch.tensor([label for video_clips, label in samples for _ in range(len(video_clips))])
    return clips, labels


@dataclass
class EvalSample:
    """All views of one video (clips x crops), or the reason it could not be read."""

    index: int
    views: torch.Tensor | None
    error: str | None = None


class EvalClipDataset(Dataset):
    """``num_clips`` test clips x ``num_crops`` crops per video (`data.views.video_views`).

    Failures are returned, not raised, so an evaluation reports them and goes on.
    """

    def __init__(self, records: list[VideoRecord], spec: ClipSpec, num_clips: int = 1, num_crops: int = 1) -> None:
        self.records = records
        self.spec = spec
        self.num_clips = num_clips
        self.num_crops = num_crops
        EvalTransform(spec, num_crops)  # refuse a bad crop count before any worker starts

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> EvalSample:
        record = self.records[index]
        try:
            views = video_views(record.path, self.spec, clips=self.num_clips, crops=self.num_crops, info=record.info)
            return EvalSample(index, views.views)
        except VideoReadError as error:
            logger.warning("could not read %s: %s", error.path, error.reason)
            return EvalSample(index, None, error.reason)


def collate_eval(samples: list[EvalSample]) -> tuple[torch.Tensor | None, list[int], list[EvalSample]]:
    """Stack the readable videos' views: (videos, views, T, C, H, W); failures passed through."""
    good = [s for s in samples if s.views is not None]
    views = default_collate([s.views for s in good]) if good else None  # in shared memory, see `collate_train`
    return views, [s.index for s in good], [s for s in samples if s.views is None]


# Memory that `KeptBatches` may keep: the `motion` preset's validation clip is 0.44 MB, so about
# 2,400 videos; VideoMAE's 16 x 224 px clip is 2.4 MB, so about 440.
KEPT_BATCHES_BYTES = 1 << 30


class KeptBatches:
    """A loader whose batches are kept in memory after the first pass, when they fit in ``budget`` bytes.

    Why: validation decodes the same clips every epoch. On H.264 files with B-frames, where a
    segment clip decodes nearly the whole video, that was 2 of a 13-minute training run's
    minutes (48 videos, 46 epochs). Batches are kept as the loader yields them, so results are
    the same whether they come from memory or from the files.
    """

    def __init__(self, loader: Iterable, budget: int = KEPT_BATCHES_BYTES) -> None:
        self.loader = loader
        self.budget = budget
        self.kept: list | None = None

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        if self.kept is not None:
            yield from self.kept
            return
        kept: list | None = []
        size = 0
        for batch in self.loader:
            views = batch[0]
            size += views.numel() * views.element_size() if views is not None else 0
            kept = kept if kept is not None and size <= self.budget else None
            if kept is not None:
                kept.append(batch)
            yield batch
        self.kept = kept
