"""What image size costs: the training step per side and channels, and ingesting a large image folder.

1. Training: the network `preset: auto` builds for each side (16 to 128, grey and colour: pytorch/examples'
   DCGAN, width 64), the project's loop (`GANTrainer.train_epoch`, conf/base's loop settings at batch 64,
   as many fakes as reals), timed over a few steps after a warm-up step, on CPU and on CUDA when present.
   Each configuration runs in its own process, so its peak RSS (CPU) is its own; on CUDA the peak
   allocated GPU memory is printed too.
2. Ingestion: a flat folder of ``--folder-images`` (50,000) 64x64 colour PNG crops of scikit-learn's two
   sample photos (written once into ``--folder``), read by the `image_folder` source in a fresh process:
   wall time and peak RSS, beside the size of the array it returns.

    .venv/bin/python benchmarks/image_sizes.py [--sides 16 32 64 128] [--steps 4] [--folder-images 50000]

Imports neither Kedro nor MLflow for the training part.
"""

import argparse
import multiprocessing
import platform
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from train_throughput import PROJECT_SETTINGS

from gan_pipeline.gan.networks import build_networks
from gan_pipeline.gan.presets import preset_name, resolve_architecture
from gan_pipeline.gan.runtime import SpeedSettings, seeded_generator
from gan_pipeline.gan.training import GANTrainer

BATCH = 64
SETTINGS = replace(  # train_throughput's loop as conf/base sets it up, at batch 64, with as many fakes
    PROJECT_SETTINGS,
    batch_size=BATCH,
    fakes_per_step=BATCH,
    speed=replace(PROJECT_SETTINGS.speed, compile=False),
    num_fixed_samples=16,
)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def training_step(side: int, channels: int, steps: int, device_name: str) -> dict[str, float | str]:
    """Images/s of the loop on random data of this shape (one process per call: peak RSS is this one's)."""
    device = torch.device(device_name)
    shape = (channels, side, side)
    arch = resolve_architecture("auto", shape, {})
    generator, discriminator = build_networks(arch)
    real = torch.rand(BATCH * (steps + 1), *shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    settings = replace(SETTINGS, log_every_steps=steps + 1)
    speed = SpeedSettings.resolve(settings.speed, device)
    trainer = GANTrainer(
        generator.to(device),
        discriminator.to(device),
        real.to(device),
        settings,
        seeded_generator(0, device),
        speed=speed,
    )
    trainer.train_epoch(1)  # warm-up: allocations, autotuning
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train_epoch(2)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    result: dict[str, float | str] = {
        "preset": preset_name("auto", shape),
        "images_per_s": BATCH * (steps + 1) / seconds,
        "peak_rss_mib": peak_rss_mib(),
    }
    if device.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def in_own_process(function: Callable[..., dict], *args: object) -> dict:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def write_folder(folder: Path, count: int, side: int = 64) -> None:
    """``count`` random crops of the two sample photos as PNG files (kept for the next run)."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    if folder.is_dir() and sum(1 for _ in folder.glob("*.png")) == count:
        return
    folder.mkdir(parents=True, exist_ok=True)
    photos, rng = load_sample_images().images, np.random.default_rng(0)
    for index in range(count):
        photo = photos[index % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - side), rng.integers(0, photo.shape[1] - side)
        Image.fromarray(photo[top : top + side, left : left + side]).save(folder / f"crop{index:06d}.png")


def ingest(folder: Path) -> dict[str, float]:
    from gan_pipeline.datasets import load_dataset

    started = time.perf_counter()
    raw = load_dataset("image_folder", {"path": str(folder), "progress_bar": False}, folder.parent)
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mib": peak_rss_mib(),
        "array_mib": raw.samples.nbytes / 2**20,
        "shape": "x".join(map(str, raw.samples.shape)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sides", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--steps", type=int, default=4, help="timed steps of 64 images per configuration")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/gan-pipeline-image-sizes/crops64"))
    parser.add_argument("--folder-images", type=int, default=50_000, help="0 skips the ingestion part")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, torch {torch.__version__}")
    print(f"CPU: {platform.processor() or platform.machine()} ({multiprocessing.cpu_count()} logical cores)")
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    print(f"\ntraining step, batch {BATCH} (+{BATCH} fakes): one epoch of {args.steps + 1} steps after a warm-up epoch")
    print(
        f"{'device':<6} {'side':>4} {'ch':>3} {'preset':<9} {'images/s':>9} {'peak RSS MiB':>13} {'peak GPU MiB':>13}"
    )
    for device in devices:
        for side in args.sides:
            for channels in (1, 3):
                row = in_own_process(training_step, side, channels, args.steps, device)
                gpu = f"{row['peak_gpu_mib']:13.0f}" if "peak_gpu_mib" in row else f"{'-':>13}"
                print(
                    f"{device:<6} {side:>4} {channels:>3} {row['preset']:<9} {row['images_per_s']:9.1f} "
                    f"{row['peak_rss_mib']:13.0f} {gpu}",
                    flush=True,
                )
    if args.folder_images:
        write_folder(args.folder, args.folder_images)
        result = in_own_process(ingest, args.folder)
        print(
            f"\ningestion of {args.folder_images} 64x64 colour PNGs ({args.folder}): {result['seconds']:.1f} s, "
            f"peak RSS {result['peak_rss_mib']:.0f} MiB for a {result['shape']} array of {result['array_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
