"""Training videos decoded once and kept in memory, so later epochs cut their clips without decoding."""


from __future__ import annotations


import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import av
import numpy as np

from vidcls.data.crop import ClipWindow, frame_bytes, resized_dims
from vidcls.data.decode import cut_clips, read_all_frames, read_clips
from vidcls.data.files import VideoInfo
from vidcls.errors import VideoReadError

logger = logging.getLogger(__name__)


class KeptVideos:
    """Training videos decoded once and kept in memory (as `read_all_frames` gives them), up to
    ``budget`` bytes; clips of a kept video are cut without decoding (`cut_clips`).

    Why: a segment clip of an H.264 video with B-frames decodes nearly the whole video, as much
    CPU as half the `motion` preset's training step (benchmarks/README.md, "Figures behind
    defaults"), and training reads every video once per epoch for dozens of epochs. Frames are kept scaled
    down to the largest short side training asks for, so a few hundred short videos fit in a
    few hundred MB. Videos longer than ``max_frames``, or past the budget, are decoded per clip,
    from the same scaled-down frames: a clip has the same pixels whether its video was kept.
    """

    def __init__(self, budget: int, max_frames: int) -> None:
        self.budget, self.max_frames = budget, max_frames
        self.used = 0
        self.videos: dict[str, list[av.VideoFrame]] = {}
        self.full = False

    def read_clips(
        self, path: str | Path, info: VideoInfo, clips: Sequence[tuple[Sequence[int], ClipWindow]], shrink_to: int
    ) -> list[np.ndarray]:
        """`read_clips` of ``path``, from memory when it is kept; kept on first read when it fits."""
        frames = self.videos.get(str(path))
        if frames is None and self._may_keep(info, shrink_to):
            frames = read_all_frames(path, info.num_frames, shrink_to)
            self._keep(str(path), frames)
        if frames is None:
            return read_clips(path, clips, shrink_to)
        return cut_clips(frames, clips)

    def fill(self, videos: Iterable[tuple[str, VideoInfo]], shrink_to: int, threads: int) -> None:
        """Decode and keep now, in ``threads`` threads, the videos that fit; then keep no more.

        Why: loader processes forked after this share these frames' pages (copy-on-write, and
        frames are only read), so the machine holds one copy. Kept as each process read them,
        every process held its own: 2 x 1.2 GB of the benchmark's 3.1 GB (benchmarks/speed.md).
        """
        chosen: dict[str, VideoInfo] = {}
        planned = self.used
        for path, info in videos:
            size = self._estimated_bytes(info, shrink_to)
            if path in chosen or path in self.videos or not 0 < info.num_frames <= self.max_frames:
                continue
            if planned + size <= self.budget:
                chosen[path] = info
                planned += size

        def decode(path: str) -> list[av.VideoFrame] | None:
            try:
                return read_all_frames(path, chosen[path].num_frames, shrink_to)
            except VideoReadError as error:  # the loader names it when a clip of it is asked for
                logger.debug("not kept: %s: %s", error.path, error.reason)
                return None

        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="vidcls-keep") as pool:
            for path, frames in zip(chosen, pool.map(decode, chosen)):
                if frames is not None:
                    self._keep(path, frames)
        self.full = True
        logger.info("%d training videos decoded and kept in memory (%d MB)", len(self.videos), self.used >> 20)

    def _may_keep(self, info: VideoInfo, shrink_to: int) -> bool:
        """Short enough, and its frames (estimated as 4:2:0 at the kept size) fit what is left."""
        if self.full or not 0 < info.num_frames <= self.max_frames:
            return False
        if self.used + self._estimated_bytes(info, shrink_to) > self.budget:
            self._stop_keeping()
        return not self.full

    @staticmethod
    def _estimated_bytes(info: VideoInfo, shrink_to: int) -> int:
        width, height = resized_dims(info.width, info.height, min(shrink_to, info.width, info.height))
        return info.num_frames * width * height * 3 // 2

    def _keep(self, path: str, frames: list[av.VideoFrame]) -> None:
        size = sum(frame_bytes(frame) for frame in {id(frame): frame for frame in frames}.values())
        if self.used + size > self.budget:
            self._stop_keeping()
            return
        self.videos[path] = frames
        self.used += size

    def _stop_keeping(self) -> None:
        """The budget is spent: keep what is kept, decode the rest per clip from now on."""
        self.full = True
        logger.info("%d training videos kept in memory (%d MB, the budget); the others are decoded every epoch",
                    len(self.videos), self.used >> 20)
