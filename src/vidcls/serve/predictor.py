"""The model behind the HTTP API: one classifier, loaded once, shared by every request.

A request's clips are decoded in a worker thread (at most one decode per core at a time, which
also bounds the memory held by decoded views), then scored by the forward batcher together with
whatever else is waiting. A timeline request's windows are decoded in the same pass and scored
through the same batcher, one job per window, so the model still runs one forward at a time.
"""

from __future__ import annotations

import base64
import io
import os
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import asyncio

import anyio
import torch
from fastapi import HTTPException
from PIL import Image

from vidcls.defaults import SERVE_BATCH_WAIT_MS, SERVE_MAX_BATCH
from vidcls.data.views import WindowBatch
from vidcls.inference.prediction import VideoClassifier, file_warnings
from vidcls.serve.batching import ForwardBatcher
from vidcls.serve.schemas import PredictOptions, PredictResponse
from vidcls.data.probe import probe_video
from vidcls.inference.options import ViewOptions

MAX_WINDOWS = 512  # one decoded clip per window: bounds the work a single request can ask for
THUMBNAIL_SIDE = 112

T = TypeVar("T")


def frame_strip(clip: torch.Tensor, max_side: int = THUMBNAIL_SIDE) -> list[str]:
    """JPEG data URLs of a (T, C, H, W) uint8 clip: the frames as the model saw them, before normalising."""
    urls = []
    for frame in clip.permute(0, 2, 3, 1).numpy():
        image = Image.fromarray(frame)
        image.thumbnail((max_side, max_side))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        urls.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return urls


def check_window_count(duration: float, window: float) -> None:
    """Refuse, before decoding, a window so short that the request would decode too many clips."""
    if duration / window > MAX_WINDOWS:
        raise HTTPException(
            422, f"window={window:g} s would cut this {duration:.0f} s video into more than "
            f"{MAX_WINDOWS} windows; use at least {duration / MAX_WINDOWS:.2f} s.",
        )


class Predictor:
    """A `VideoClassifier` and the rules for sharing it between concurrent requests."""

    def __init__(
        self, classifier: VideoClassifier, *, max_batch: int = SERVE_MAX_BATCH, batch_wait_ms: float = SERVE_BATCH_WAIT_MS,
    ) -> None:
        self.classifier = classifier
        self.batcher = ForwardBatcher(self._score, max_batch, batch_wait_ms)
        self._decoders = anyio.CapacityLimiter(os.cpu_count() or 1)
        name = classifier.loaded.name
        # A local model directory is shown by its folder name, not the server's full path.
        self.model_name = Path(name).name if Path(name).is_dir() else name
        self.device = str(next(classifier.loaded.model.parameters()).device)

    def running(self) -> AbstractAsyncContextManager:
        """Serve requests (run the batcher) for the duration of the block."""
        return self.batcher.running()

    async def predict(self, path: Path, options: PredictOptions) -> PredictResponse:
        """Top-k labels for the video at ``path``, with a timeline and frames when asked for."""
        started = time.perf_counter()
        view_options = options.view_options()
        info = await self._in_worker(probe_video, path)
        if view_options.window:
            check_window_count(info.duration, view_options.window)
        views = await self._in_worker(self.classifier.preprocess, path, view_options, info=info)
        probabilities = await self.batcher.probabilities(views.views.unsqueeze(0))
        top_k = self.classifier.postprocess(probabilities, view_options)
        windows = await self._timeline(views.windows, view_options) if views.windows is not None else []
        frames = await self._in_worker(frame_strip, views.views[len(views.views) // 2]) if options.frames else []
        return PredictResponse(
            model=self.model_name, top_k=top_k, duration=info.duration, windows=windows, frames=frames,
            warnings=file_warnings(views.info),
            time_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _timeline(self, windows: Iterator[WindowBatch], options: ViewOptions) -> list[dict]:
        """Per-window top-k, each window a job of the forward batcher, decoded a batch at a time in a
        worker as the timeline is scored: only the scores are kept."""
        timeline = []
        while (batch := await self._in_worker(next, windows, None)) is not None:
            spans, clips = batch
            rows = await asyncio.gather(*(self.batcher.probabilities(clip.unsqueeze(0)) for clip in clips))
            timeline += self.classifier.timeline(torch.stack(rows), spans, options)
        return timeline

    async def _in_worker(self, function: Callable[..., T], *args, **kwargs) -> T:
        """Run CPU work (decoding, JPEG encoding) in a thread, no more at once than there are cores."""
        return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs), limiter=self._decoders)

    def _score(self, views: torch.Tensor) -> torch.Tensor:
        return self.classifier.score(views)
