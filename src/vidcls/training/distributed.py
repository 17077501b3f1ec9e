"""Data-parallel training over processes started by `torchrun` or `accelerate launch`.

Both launchers set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in each process's
environment; without them every helper here is a no-op, so one process runs exactly as before.
The process group lives in this one module, so the training loop reads as a single-process
loop with a few `Processes` calls: shard, wrap, sum, gather, and write only on the main process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only the main process writes the model, metrics, curve, checkpoint and card."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over every process (each process gets the sums)."""
        if not self.active:
            return list(values)
        # float64 so a sum of losses or clip counts is exact enough; on the device, as NCCL requires.
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value: object) -> list[object]:
        """Every process's ``value``, in rank order, on every process (values are pickled)."""
        if not self.active:
            return [value]
        gathered: list[object] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered


def from_environment(device: torch.device) -> Processes:
    """This process's rank and device from the launcher's variables; one process without them.

    A CUDA device without an index becomes the process's own GPU, ``cuda:LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return Processes(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[Processes]:
    """Join the launcher's process group for the duration (NCCL on CUDA, else gloo), then leave it.

    Processes other than the main one log warnings only, so a run's progress is told once.
    """
    processes = from_environment(device)
    if not processes.active:
        yield processes
        return
    if processes.device.type == "cuda":
        torch.cuda.set_device(processes.device)
    backend = "nccl" if processes.device.type == "cuda" else "gloo"
    dist.init_process_group(backend)  # env:// from the launcher's MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    if not processes.is_main:
        logging.getLogger("vidcls").setLevel(logging.WARNING)
    logger.info("process group: %d processes, backend %s", processes.world_size, backend)
    try:
        yield processes
    finally:
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, processes: Processes) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (gradients all-reduced in backward), or as is alone.

    On CUDA, batch norm layers become SyncBatchNorm, in place, so their statistics are those of the
    whole step's batch, as in one process; gloo on the CPU has no SyncBatchNorm, so there each
    process normalises its own share of the batch.
    """
    if not processes.active:
        return model
    if processes.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[processes.device.index])
    else:
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
    # inference.forward.model_logits names the model's input (pixel_values_videos for V-JEPA 2) from this.
    wrapped.main_input_name = getattr(model, "main_input_name", "pixel_values")
    return wrapped


def gradient_sync(model: torch.nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """Skip the all-reduce on micro-batches before the last of an optimizer step (DDP's no_sync)."""
    if sync or not isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()
