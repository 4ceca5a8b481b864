"""Training throughput: images/s of the project's training loop vs a pytorch/examples-style DCGAN loop.

Both train the article's 28x28 DCGAN (preset ``article_dcgan``) with the non-saturating loss and
Adam (2e-4, betas 0.5/0.999) at the same batch size on the same MNIST-shaped data, in one process.
Timed epochs alternate between the loops so machine noise hits both alike; it prints the median
images/s of each and the median ratio of epochs timed back to back.

- reference: pytorch/examples' dcgan ``main.py`` loop: ``DataLoader(TensorDataset(x), shuffle=True)``,
  each batch moved to the device (pinned memory on CUDA), D's real and fake halves backpropagated
  separately, fp32 eager, and its per-step ``.item()`` reads of errD, errG, D(x), D(G(z)).
- project: ``GANTrainer.train_epoch``, the loop ``kedro run`` uses, with the project's defaults
  (EMA on, health checks, a history row every 10 steps) and the speed options below.

On CPU an epoch is ``--cpu-steps`` steps (the CPU target is a ratio >= 0.95). With an NVIDIA
GPU an epoch is MNIST-sized (60,000 images), and the project runs once with every speed
option on (the CUDA default), once with each option off, and once with all off; it prints epoch
seconds, GPU memory and utilisation too (targets: < 1 s per epoch, >= 5x the reference).

    .venv/bin/python benchmarks/train_throughput.py [--batch-size 256] [--repeats 7] [--cpu-steps 4]

Imports neither Kedro nor MLflow.
"""

import argparse
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from gan_pipeline.gan.networks import build_networks
from gan_pipeline.gan.presets import PRESETS
from gan_pipeline.gan.runtime import SpeedSettings, seeded_generator
from gan_pipeline.gan.settings import HealthSettings, SpeedOptions, TrainingSettings
from gan_pipeline.gan.training import GANTrainer

MNIST_TRAIN_IMAGES = 60_000
CPU_TARGET_RATIO = 0.95
CUDA_TARGET_RATIO = 5.0
CUDA_TARGET_EPOCH_SECONDS = 1.0
ARCH = PRESETS["article_dcgan"]
# The project's loop as conf/base sets it up, at the reference's batch (G makes as many fakes as it sees reals).
PROJECT_SETTINGS = TrainingSettings(
    loss="non_saturating",
    gradient_penalty_weight=10.0,
    r1_gamma=0.0,
    discriminator_steps=1,
    packing=1,
    diff_augment=(),
    epochs=1_000_000,
    batch_size=256,
    fakes_per_step=256,
    generator_lr=2e-4,
    discriminator_lr=2e-4,
    lr_decay_start=1.0,
    betas=(0.5, 0.999),
    ema_decay=0.999,
    ema_warmup=0.25,
    standing_statistics_batches=0,
    seed=0,
    speed=SpeedOptions(precision="auto", channels_last="auto", compile="auto", cudnn_benchmark="auto"),
    health=HealthSettings(discriminator_win_score=0.02, discriminator_win_steps=200),
    log_every_steps=10,
    sample_every_epochs=10,
    num_fixed_samples=64,
    progress_bar=False,
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ReferenceLoop:
    """pytorch/examples' dcgan training loop, with the project's networks (D returns logits)."""

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device, read_every_step: bool) -> None:
        torch.manual_seed(0)
        self.generator, self.discriminator = (net.to(device) for net in build_networks(ARCH))
        self.device, self.read_every_step = device, read_every_step
        self.loader = DataLoader(
            TensorDataset(images), batch_size=batch_size, shuffle=True, pin_memory=device.type == "cuda"
        )
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def train_epoch(self) -> int:
        images_seen = 0
        for (batch,) in self.loader:
            real = batch.to(self.device, non_blocking=True)
            count = real.shape[0]
            ones = torch.ones(count, device=self.device)
            zeros = torch.zeros(count, device=self.device)
            # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
            self.discriminator.zero_grad()
            output = self.discriminator(real)
            err_d_real = F.binary_cross_entropy_with_logits(output, ones)
            err_d_real.backward()
            d_x = torch.sigmoid(output).mean()
            fake = self.generator(torch.randn(count, ARCH.latent_dim, device=self.device))
            output = self.discriminator(fake.detach())
            err_d_fake = F.binary_cross_entropy_with_logits(output, zeros)
            err_d_fake.backward()
            d_g_z1 = torch.sigmoid(output).mean()
            err_d = err_d_real + err_d_fake
            self.opt_d.step()
            # (2) Update G: maximise log D(G(z))
            self.generator.zero_grad()
            output = self.discriminator(fake)
            err_g = F.binary_cross_entropy_with_logits(output, ones)
            err_g.backward()
            d_g_z2 = torch.sigmoid(output).mean()
            self.opt_g.step()
            if self.read_every_step:  # the example prints these every iteration
                _ = (err_d.item(), err_g.item(), d_x.item(), d_g_z1.item(), d_g_z2.item())
            images_seen += count
        return images_seen


class ProjectLoop:
    """The project's own epoch loop, set up as the training node sets it up."""

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device, speed: SpeedSettings) -> None:
        config = replace(PROJECT_SETTINGS, batch_size=batch_size, fakes_per_step=batch_size)
        rng = seeded_generator(0, device)
        generator, discriminator = (net.to(device) for net in build_networks(ARCH))
        self.trainer = GANTrainer(generator, discriminator, images.to(device), config, rng, speed=speed)
        self.epoch = 0
        self.images_per_epoch = self.trainer.steps_per_epoch * batch_size

    def train_epoch(self) -> int:
        self.epoch += 1
        self.trainer.train_epoch(self.epoch)
        return self.images_per_epoch


@dataclass
class Measurement:
    name: str
    seconds: list[float]
    images: int
    peak_memory_bytes: int = 0
    utilisation: list[float] | None = None

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def images_per_second(self) -> float:
        return self.images / self.median_seconds


class UtilisationSampler:
    """Samples GPU utilisation (nvidia-smi) in the background while the timed epochs run."""

    def __init__(self, device: torch.device, interval: float = 0.05) -> None:
        self.index, self.interval = device.index or 0, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = ["nvidia-smi", f"--id={self.index}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                output = subprocess.run(query, capture_output=True, text=True, timeout=5, check=True).stdout
                self.samples.append(float(output.strip()))
            except (OSError, subprocess.SubprocessError, ValueError):
                return
            time.sleep(self.interval)

    def __enter__(self) -> "UtilisationSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_epoch(loop: "ReferenceLoop | ProjectLoop", device: torch.device, result: Measurement) -> None:
    """One epoch of ``loop``, added to ``result`` (with peak memory and utilisation on CUDA)."""
    synchronize(device)
    if device.type != "cuda":
        started = time.perf_counter()
        result.images = loop.train_epoch()
        result.seconds.append(time.perf_counter() - started)
        return
    torch.cuda.reset_peak_memory_stats(device)
    with UtilisationSampler(device) as sampler:
        started = time.perf_counter()
        result.images = loop.train_epoch()
        synchronize(device)
        result.seconds.append(time.perf_counter() - started)
    result.peak_memory_bytes = max(result.peak_memory_bytes, torch.cuda.max_memory_allocated(device))
    result.utilisation = (result.utilisation or []) + sampler.samples


def measure_side_by_side(
    loops: dict[str, Callable[[], "ReferenceLoop | ProjectLoop"]], device: torch.device, repeats: int, warmup: int
) -> list[Measurement]:
    """Build each loop, warm it up, then time ``repeats`` epochs of each.

    Repeats alternate between the loops, in reversed order every other round (A B, B A, ...), so
    that a neighbour's load on a shared machine hits every loop alike.
    """
    built = {name: build() for name, build in loops.items()}
    for loop in built.values():
        for _ in range(warmup):  # first epochs pay for cuDNN autotuning, torch.compile and allocator growth
            loop.train_epoch()
    results = {name: Measurement(name, [], 0) for name in built}
    for round_index in range(repeats):
        order = list(built) if round_index % 2 == 0 else list(reversed(built))
        for name in order:
            timed_epoch(built[name], device, results[name])
    return list(results.values())


def paired_ratio(measurement: Measurement, reference: Measurement) -> float:
    """Median over rounds of the speed ratio of epochs timed back to back: robust to load that drifts."""
    return statistics.median(
        (measurement.images / seconds) / (reference.images / reference_seconds)
        for seconds, reference_seconds in zip(measurement.seconds, reference.seconds, strict=True)
    )


def report(measurements: list[Measurement], reference_name: str, device: torch.device) -> dict[str, float]:
    reference = next(m for m in measurements if m.name == reference_name)
    ratios = {}
    header = f"{'loop':<44} {'images/s':>10} {'s/epoch':>8} {'ratio':>6}"
    if device.type == "cuda":
        header += f" {'peak mem':>9} {'GPU util':>9}"
    print(header)
    for m in measurements:
        ratios[m.name] = paired_ratio(m, reference)
        line = f"{m.name:<44} {m.images_per_second:>10.0f} {m.median_seconds:>8.3f} {ratios[m.name]:>5.2f}x"
        if device.type == "cuda":
            util = f"{statistics.mean(m.utilisation):.0f}%" if m.utilisation else "n/a"
            line += f" {m.peak_memory_bytes / 2**30:>7.2f}GB {util:>9}"
        print(line)
    print("images/s and s/epoch: medians; ratio: median of back-to-back ratios against the reference")
    return ratios


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        return f"{names[0]} ({len(names)} logical cores visible)"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def cpu_benchmark(batch_size: int, repeats: int, steps: int) -> bool:
    device = torch.device("cpu")
    images = torch.rand(steps * batch_size, *ARCH.image_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    print(f"\nCPU: {cpu_model()}, {torch.get_num_threads()} torch threads")
    print(f"epochs of {steps} steps x {batch_size} images, {repeats} timed epochs per loop, alternating")
    loops = {
        "reference (pytorch/examples dcgan)": lambda: ReferenceLoop(images, batch_size, device, read_every_step=True),
        "project (CPU defaults)": lambda: ProjectLoop(images, batch_size, device, SpeedSettings()),
    }
    ratios = report(
        measure_side_by_side(loops, device, repeats, warmup=1), "reference (pytorch/examples dcgan)", device
    )
    met = ratios["project (CPU defaults)"] >= CPU_TARGET_RATIO
    print(f"target project >= {CPU_TARGET_RATIO}x reference on CPU: {'met' if met else 'MISSED'}")
    return met


def cuda_benchmark(batch_size: int, repeats: int) -> bool:
    device = torch.device("cuda")
    properties = torch.cuda.get_device_properties(device)
    print(f"\nCUDA: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")
    print(f"epochs of {MNIST_TRAIN_IMAGES} images at batch {batch_size}, {repeats} timed epochs per loop, alternating")
    images = torch.rand(MNIST_TRAIN_IMAGES, *ARCH.image_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fast = SpeedSettings(bf16=True, channels_last=True, compile=True, cudnn_benchmark=True)
    configurations = {"project, all speed options on (CUDA default)": fast}
    for option in ("bf16", "channels_last", "compile", "cudnn_benchmark"):
        configurations[f"project, {option} off"] = replace(fast, **{option: False})
    configurations["project, all speed options off"] = SpeedSettings()
    loops: dict[str, Callable[[], ReferenceLoop | ProjectLoop]] = {
        "reference (pytorch/examples dcgan)": lambda: ReferenceLoop(images, batch_size, device, read_every_step=True),
        "reference without per-step .item()": lambda: ReferenceLoop(images, batch_size, device, read_every_step=False),
    }
    for name, speed in configurations.items():
        loops[name] = lambda speed=speed: ProjectLoop(images, batch_size, device, speed)
    measurements = measure_side_by_side(loops, device, repeats, warmup=2)
    ratios = report(measurements, "reference (pytorch/examples dcgan)", device)
    fast_name = "project, all speed options on (CUDA default)"
    epoch = next(m for m in measurements if m.name == fast_name).median_seconds
    met = ratios[fast_name] >= CUDA_TARGET_RATIO and epoch < CUDA_TARGET_EPOCH_SECONDS
    print(
        f"target < {CUDA_TARGET_EPOCH_SECONDS:g} s per epoch and >= {CUDA_TARGET_RATIO:g}x reference on CUDA: "
        f"{epoch:.3f} s, {ratios[fast_name]:.2f}x: {'met' if met else 'MISSED'}"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=256, help="the article's batch size")
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs per loop")
    parser.add_argument("--cpu-steps", type=int, default=4, help="steps per CPU epoch")
    parser.add_argument("--skip-cpu", action="store_true", help="only the CUDA comparison")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, torch {torch.__version__}")
    met = True
    if not args.skip_cpu:
        met &= cpu_benchmark(args.batch_size, args.repeats, args.cpu_steps)
    if torch.cuda.is_available():
        met &= cuda_benchmark(args.batch_size, args.repeats)
    else:
        print("\nCUDA: no NVIDIA GPU here; the CUDA comparison runs wherever one is available")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
