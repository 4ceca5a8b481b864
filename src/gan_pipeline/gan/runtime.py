"""Device, seed and speed options, resolved in one place and passed down."""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from gan_pipeline.gan.settings import SettingError, SpeedOptions


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; explicit names must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingError("device", f"{name!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SettingError(
            "device",
            f"{name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s); "
            f"use 'cuda' or an index below {torch.cuda.device_count()}",
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SettingError("device", f"{name!r} requested but MPS is not available; use 'auto' or 'cpu'")
    return device


def resident_on(samples: np.ndarray, device: torch.device) -> torch.Tensor:
    """The whole training split on the training device as one tensor (batches are then index lookups)."""
    try:
        return torch.from_numpy(samples).to(device)
    except torch.OutOfMemoryError as err:
        raise MemoryError(
            f"the training split ({samples.nbytes / 2**30:.2f} GiB) does not fit in the memory of {device}; "
            "train on a GPU with more memory, on fewer or smaller samples, or on the CPU"
        ) from err


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """Seed every global RNG (dropout, init) and return a generator for noise and shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


@dataclass(frozen=True)
class SpeedSettings:
    """The speed options with ``auto`` resolved for one device."""

    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = False

    @classmethod
    def resolve(cls, options: SpeedOptions, device: torch.device) -> "SpeedSettings":
        """``auto`` means on for CUDA (the fast path) and off on CPU and MPS (no gain there)."""
        on_cuda = device.type == "cuda"

        def pick(value: bool | str) -> bool:
            return on_cuda if value == "auto" else bool(value)

        return cls(
            bf16=on_cuda if options.precision == "auto" else options.precision == "bf16",
            channels_last=pick(options.channels_last),
            compile=pick(options.compile),
            cudnn_benchmark=pick(options.cudnn_benchmark) and on_cuda,
        )

    def describe(self) -> dict[str, str]:
        return {f"speed.{name}": str(value).lower() for name, value in self.__dict__.items()}


@contextmanager
def cudnn_autotuning(enabled: bool) -> Iterator[None]:
    """Let cuDNN benchmark convolution algorithms for the fixed batch shape, then restore the global flag."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous
