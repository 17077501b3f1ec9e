"""Score the views of videos that arrive together in one forward pass.

Why: on a GPU one forward over a few clips leaves the device mostly idle, so stacking the
requests that are waiting costs about as much as serving one of them. A single consumer task
also means the model runs one forward at a time, so concurrent requests queue instead of
fighting over the CPU's cores with parallel forwards. On the CPU the forward's cost grows with
the number of clips, so batching there buys little (see benchmarks/serve_load.py).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import torch

from vidcls.defaults import SERVE_BATCH_WAIT_MS, SERVE_MAX_BATCH


@dataclass
class _Job:
    views: torch.Tensor  # (1, views, T, C, H, W) uint8
    future: asyncio.Future


class ForwardBatcher:
    """Collects up to ``max_batch`` waiting jobs, at most ``max_wait_ms`` after the first, and scores them together."""

    def __init__(
        self, score: Callable[[torch.Tensor], torch.Tensor], max_batch: int = SERVE_MAX_BATCH,
        max_wait_ms: float = SERVE_BATCH_WAIT_MS,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.score = score
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._queue: asyncio.Queue[_Job] | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ForwardBatcher]:
        """Run the consumer task on the current event loop for the duration of the block."""
        self._queue = asyncio.Queue()
        consumer = asyncio.create_task(self._consume())
        try:
            yield self
        finally:
            consumer.cancel()
            with suppress(asyncio.CancelledError):
                await consumer

    async def probabilities(self, views: torch.Tensor) -> torch.Tensor:
        """Class probabilities (classes,) for one video's views, scored with whatever else is waiting."""
        if self._queue is None:
            raise RuntimeError("ForwardBatcher.probabilities called outside `running()`")
        job = _Job(views, asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def _consume(self) -> None:
        while True:
            jobs = await self._collect()
            for group in _by_shape(jobs):
                await self._run(group)

    async def _collect(self) -> list[_Job]:
        jobs = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while len(jobs) < self.max_batch:
            if not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return jobs

    async def _run(self, jobs: list[_Job]) -> None:
        """One forward for jobs of the same shape, off the event loop; a failure goes to each caller."""
        try:
            probabilities = await asyncio.to_thread(self.score, torch.cat([job.views for job in jobs]))
        except Exception as error:  # handed to the requests, which report it
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        for job, row in zip(jobs, probabilities):
            if not job.future.done():  # the client may have gone away meanwhile
                job.future.set_result(row)


def _by_shape(jobs: list[_Job]) -> list[list[_Job]]:
    """Jobs whose views stack: same number of clips and clip shape."""
    groups: dict[tuple, list[_Job]] = defaultdict(list)
    for job in jobs:
        groups[tuple(job.views.shape[1:])].append(job)
    return list(groups.values())
