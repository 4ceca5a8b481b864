"""Data-parallel training across processes with PyTorch's own engine (``torchrun`` + DDP).

``torchrun`` starts one process per GPU and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
without it everything here degrades to a single process and every collective is a no-op.
"""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gan_pipeline.gan.runtime import resolve_device
from gan_pipeline.gan.settings import SettingError

logger = logging.getLogger(__name__)


def process_rank() -> int:
    """This process' rank under torchrun, 0 otherwise."""
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Only the main process writes outputs and talks to MLflow."""
    return process_rank() == 0


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits among the training processes; collectives are no-ops for one process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise mean over processes."""
        if not self.is_distributed:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def maximum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise maximum over processes."""
        if not self.is_distributed:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return values

    def from_main(self, value: Any) -> Any:
        """The main process' ``value`` on every process (a small picklable object)."""
        if not self.is_distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every process' ``value``, in rank order, on every process."""
        if not self.is_distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """DistributedDataParallel around ``module`` (gradients averaged in backward), or ``module`` itself."""
        if not self.is_distributed:
            return module
        return DistributedDataParallel(
            module,
            device_ids=[device.index] if device.type == "cuda" else None,
            gradient_as_bucket_view=True,  # gradients live in the all-reduce buckets: no copy, less memory
        )


SINGLE_PROCESS = DistributedContext()


def distributed_device(name: str, local_rank: int) -> torch.device:
    """Each process gets its own GPU: ``auto`` and ``cuda`` become ``cuda:LOCAL_RANK``."""
    if name.startswith("cuda:") or name == "mps":
        raise SettingError(
            "device",
            f"{name!r} cannot be shared by several torchrun processes; use 'auto' or 'cuda' (each process takes "
            "cuda:LOCAL_RANK) or 'cpu'",
        )
    device = resolve_device(name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"torchrun started local rank {local_rank} but this node has {torch.cuda.device_count()} GPU(s); "
                "set --nproc-per-node to at most the number of GPUs"
            )
        return torch.device("cuda", local_rank)
    if device.type == "mps":
        return torch.device("cpu")
    return device


def process_device(name: str) -> torch.device:
    """The device this process trains on: under torchrun each process takes its own GPU."""
    if launched_world_size() == 1:
        return resolve_device(name)
    return distributed_device(name, int(os.environ.get("LOCAL_RANK", "0")))


@contextmanager
def distributed_training(device_name: str, backend: str) -> Iterator[tuple[DistributedContext, torch.device]]:
    """Join the torchrun process group (if launched by torchrun) for the duration of training.

    ``backend`` ``auto`` picks NCCL for CUDA and gloo for CPU. A process group that already exists
    (started by the caller) is used as is and left open.
    """
    device = process_device(device_name)
    if launched_world_size() == 1:
        yield SINGLE_PROCESS, device
        return
    created = not dist.is_initialized()
    if created:
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    context = DistributedContext(
        rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0"))
    )
    logger.info("Process %d of %d trains on %s", context.rank, context.world_size, device)
    try:
        yield context, device
    finally:
        if created:
            dist.destroy_process_group()
